#include "qvmail/bounce.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace fs = std::filesystem;

fs::path service_variable_file(const Paths& paths, std::string_view service, std::string_view name) {
    return paths.servicedir / std::string(service) / "variables" / std::string(name);
}

std::optional<std::string> read_service_variable(const Paths& paths, std::string_view service, std::string_view name) {
    std::ifstream in(service_variable_file(paths, service, name), std::ios::binary);
    if (!in) return std::nullopt;
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.pop_back();
    for (char& c : line)
        if (c == '\0') c = '\n';
    if (line.empty()) return std::nullopt;
    return line;
}

std::vector<std::string> set_service_variable(const Paths& paths, std::string_view service, std::string_view name,
                                              std::string_view value, bool dry_run) {
    fs::path file = service_variable_file(paths, service, name);
    FileTransaction tx(dry_run);
    tx.make_dir(file.parent_path(), 0755);
    tx.write(file, std::string(value) + "\n", 0644);
    if (!dry_run) tx.commit();
    return tx.log();
}

std::vector<std::string> unset_service_variable(const Paths& paths, std::string_view service, std::string_view name,
                                                bool dry_run) {
    fs::path file = service_variable_file(paths, service, name);
    std::error_code ec;
    if (!fs::exists(file, ec)) throw Error(Exit::missing, std::string(name) + " is not set: no " + file.string());
    FileTransaction tx(dry_run);
    tx.remove(file);
    if (!dry_run) tx.commit();
    return tx.log();
}

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

PatternKind bounce_rules_kind(const Paths& paths) {
    if (paths.qregex || read_service_variable(paths, kSendService, "QREGEX")) return PatternKind::regex;
    return PatternKind::wildmat;
}

std::vector<std::string> add_bounce_rule(const Paths& paths, std::string_view pattern,
                                         const std::vector<EnvAssignment>& env, bool dry_run) {
    PatternKind kind = bounce_rules_kind(paths);
    std::string line = format_envrule(pattern, env);
    parse_envrule(line, kind);  // the pattern, as the rules' reader takes it
    ControlFile f = ControlFile::load(paths.bounce_rules);
    if (f.contains(line)) throw Error(Exit::exists, f.path().string() + " has this rule already: " + printable(line));
    f.add(line);
    FileTransaction tx(dry_run);
    tx.write(f.path(), f.text(), 0644);
    if (!dry_run) tx.commit();
    return tx.log();
}

std::vector<std::string> remove_bounce_rule(const Paths& paths, std::uint64_t line, bool dry_run) {
    ControlFile f = ControlFile::load(paths.bounce_rules);
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
    FileTransaction tx(dry_run);
    tx.write(f.path(), kept, 0644);
    if (!dry_run) tx.commit();
    return tx.log();
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
                                                    const std::vector<EnvRule>& rules,
                                                    std::string_view bounce_recipient, PatternKind kind) {
    if (auto q = env.find("BOUNCEQUEUE"); q != env.end() && !q->second.empty()) env["QMAILQUEUE"] = q->second;
    env.erase("SPAMFILTER");
    env.erase("FILTERARGS");
    return apply_envrules(rules, bounce_recipient, kind, env);
}

}  // namespace qv
