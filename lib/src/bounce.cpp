#include "qvmail/bounce.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/queue.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace fs = std::filesystem;

void check_bounce_program(std::string_view path) {
    std::string p(path);
    if (p.empty() || p[0] != '/') throw Error(Exit::dataerr, "'" + printable(path) + "' is not an absolute path");
    if (p.find('\0') != std::string::npos || p.find('\n') != std::string::npos)
        throw Error(Exit::dataerr, "'" + printable(path) + "' holds a line end");
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) throw sys_error(Exit::dataerr, "cannot use", p, errno);
    if (!S_ISREG(st.st_mode)) throw Error(Exit::dataerr, p + " is not a regular file");
    if ((st.st_mode & 0111) == 0 || ::access(p.c_str(), X_OK) != 0)
        throw Error(Exit::dataerr, p + " is not executable");
}

BounceRulesSetting bounce_rules_setting(const Paths& paths) {
    BounceRulesSetting s;
    std::optional<std::string> name = paths.bouncerules;
    s.file_source = "BOUNCERULES in this environment";
    if (!name) {
        name = read_service_variable(paths, kSendService, "BOUNCERULES");
        s.file_source = "BOUNCERULES of qmail-send";
    }
    if (!name) {
        s.file = paths.control("bounce.envrules");
        s.file_source = "the default";
    } else if ((*name)[0] == '/') {
        s.file = *name;
    } else {
        fs::path rel(*name);
        for (auto& part : rel)
            if (part == "..")
                throw Error(Exit::config, "BOUNCERULES=" + printable(*name) + " (" + s.file_source +
                                              "): a relative name cannot leave its directory with '..'");
        s.file = name->starts_with("./") ? paths.qmailhome / name->substr(2) : paths.controldir / rel;
    }
    if (paths.qregex) {
        s.kind = PatternKind::regex;
        s.kind_source = "QREGEX in this environment";
    } else if (read_service_variable(paths, kSendService, "QREGEX")) {
        s.kind = PatternKind::regex;
        s.kind_source = "QREGEX of qmail-send";
    } else {
        s.kind_source = "no QREGEX";
    }
    return s;
}

std::vector<std::string> add_bounce_rule(const Paths& paths, std::string_view pattern,
                                         const std::vector<EnvAssignment>& env, bool dry_run) {
    BounceRulesSetting setting = bounce_rules_setting(paths);
    if (pattern.empty() && setting.kind == PatternKind::regex)
        throw Error(Exit::dataerr,
                    "an empty regular expression matches every sender (QREGEX is set): write <> for the null sender");
    std::string line = format_envrule(pattern, env);
    parse_envrule(line, setting.kind);  // the pattern, as the rules' reader takes it
    ControlFile f = ControlFile::load(setting.file);
    if (f.contains(line)) throw Error(Exit::exists, f.path().string() + " has this rule already: " + printable(line));
    f.add(line);
    return change_file(f.path(), f.text(), 0644, dry_run);
}

std::vector<std::string> remove_bounce_rule(const Paths& paths, std::uint64_t line, bool dry_run) {
    ControlFile f = ControlFile::load(bounce_rules_setting(paths).file);
    std::string kept;
    std::uint64_t n = 0;
    bool removed = false;
    f.for_each_line([&](std::string_view l) {
        if (++n == line && !control_entry(l).empty()) {
            removed = true;
        } else {
            kept.append(l);
            kept += '\n';
        }
        return true;
    });
    if (!removed)
        throw Error(Exit::missing, f.path().string() + ":" + std::to_string(line) +
                                       " is not a rule (qmailctl bounce rules list shows their lines)");
    return change_file(f.path(), kept, 0644, dry_run);
}

std::vector<std::string> bounce_processor_argv(const std::string& processor, const BounceReport& b) {
    return {processor, b.bounce_file, b.report, b.sender, b.original_recipient, b.bounce_recipient};
}

BounceVerdict bounce_processor_verdict(int status) noexcept {
    if (!WIFEXITED(status)) return BounceVerdict::retry;  // a crash: try again later
    switch (WEXITSTATUS(status)) {
        case 0:
            return BounceVerdict::inject;
        case 1:
            return BounceVerdict::discard;
        default:
            return BounceVerdict::retry;
    }
}

const char* to_string(BounceVerdict v) noexcept {
    switch (v) {
        case BounceVerdict::inject:
            return "inject";
        case BounceVerdict::discard:
            return "discard";
        case BounceVerdict::retry:
            break;
    }
    return "retry";
}

std::vector<EnvChange> bounce_injection_environment(std::map<std::string, std::string>& env,
                                                    const std::vector<EnvRule>& rules, std::string_view original_sender,
                                                    PatternKind kind) {
    if (auto q = env.find("BOUNCEQUEUE"); q != env.end() && !q->second.empty()) env["QMAILQUEUE"] = q->second;
    env.erase("SPAMFILTER");
    env.erase("FILTERARGS");
    return apply_envrules(rules, original_sender, kind, env);
}

std::string bounce_paragraph(std::string_view recipient, std::string_view report) {
    std::string out = "<";
    for (char c : recipient) out += c == '\n' ? '_' : c;
    out += ">:\n";
    std::size_t start = 0;
    while (start < report.size()) {
        std::size_t end = report.find('\n', start);
        std::string_view line = report.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        out += line.empty() ? std::string_view("/") : line;
        out += '\n';
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    if (report.empty()) out += "/\n";
    out += '\n';
    return out;
}

std::pair<std::string, std::string> split_bounce_file(std::string_view content) {
    std::size_t colon = content.find(':');
    std::string_view rcpt = content.substr(0, colon);
    if (rcpt.starts_with('<') && rcpt.ends_with('>')) rcpt = rcpt.substr(1, rcpt.size() - 2);
    std::string_view rest = colon == std::string_view::npos ? std::string_view() : content.substr(colon + 1);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t' || rest.front() == '\n')) rest.remove_prefix(1);
    return {std::string(rcpt), std::string(rest)};
}

std::string bounce_message_head(const BounceHead& h, std::string_view paragraphs, std::time_t now) {
    std::string out;
    out += "Date: " + rfc822_date(now) + "\n";
    out += "From: " + h.from + "\n";
    out += "To: " + h.to + "\n";
    out += "Subject: failure notice\n\n";
    out += "Hi. This is the qmail-send program at " + h.host + ".\n";
    if (h.double_bounce) {
        out += "I tried to deliver a bounce message to this address, but the bounce bounced!\n\n";
    } else {
        out += "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
               "This is a permanent error; I've given up. Sorry it didn't work out.\n\n";
    }
    out += paragraphs;
    out += h.double_bounce ? "--- Below this line is the original bounce.\n\n" : "--- Below this line is a copy of the message.\n\n";
    return out;
}

}  // namespace qv
