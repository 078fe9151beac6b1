// vcfilter - show, add, change and remove mail filter rules, and test them on a message. See vcfilter(8).
#include <CLI/CLI.hpp>

#include <charconv>
#include <fstream>
#include <iostream>
#include <iterator>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/filter.hpp"
#include "qvmail/message.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv::cmd_vcfilter {

namespace {

struct Args {
    std::string address;
    bool show = false, raw = false, insert = false, test = false, list_headers = false, cluster = false;
    std::optional<int> remove, update;
    std::optional<std::string> name, header, comparison, keyword, folder, action, message_file;
};

int header_number(const std::string& text, const HeaderList& headers) {
    int n = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), n);
    if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return n;  // checked with the rule
    if (auto k = headers.number(text)) return *k;
    throw Error(Exit::dataerr, "-h '" + printable(text) +
                                   "': not a header of the list (vcfilter --headers shows them; a site adds names "
                                   "in etc/headerlist)");
}

int comparison_number(const std::string& text) {
    if (auto c = parse_comparison(text)) return static_cast<int>(*c);
    std::string known;
    for (int i = 0; i < kComparisonCount; ++i)
        known += (i ? ", " : "") + std::to_string(i) + " " + std::string(comparison_name(static_cast<Comparison>(i)));
    throw Error(Exit::dataerr, "-c '" + printable(text) + "': not a comparison (" + known + ")");
}

Json rule_json(const FilterRule& r, const HeaderList& headers, const std::string& address) {
    Json j = Json::object();
    j.set("address", address).set("number", r.number).set("name", r.name).set("header", r.header);
    std::string_view h = headers.name(r.header);
    j.set("header_name", h.empty() ? Json() : Json(h));
    j.set("comparison", r.comparison);
    bool known = r.comparison >= 0 && r.comparison < kComparisonCount;
    j.set("comparison_name", known ? Json(comparison_name(static_cast<Comparison>(r.comparison))) : Json());
    j.set("keyword", r.keyword).set("folder", r.folder).set("action", r.action);
    j.set("action_text", describe_bounce_action(r.action));
    return j;
}

std::string header_text(const FilterRule& r, const HeaderList& headers) {
    if (r.comparison == static_cast<int>(Comparison::not_my_id)) return "N/A";
    std::string_view h = headers.name(r.header);
    return h.empty() ? "invalid header " + std::to_string(r.header) : std::string(h);
}

std::string comparison_text(const FilterRule& r) {
    if (r.comparison < 0 || r.comparison >= kComparisonCount) return "invalid " + std::to_string(r.comparison);
    return std::string(comparison_name(static_cast<Comparison>(r.comparison)));
}

// "Subject Contains 'viagra'"
std::string test_text(const FilterRule& r, const HeaderList& headers) {
    if (r.comparison == static_cast<int>(Comparison::not_my_id)) return comparison_text(r);
    return header_text(r, headers) + " " + comparison_text(r) + " '" + printable(r.keyword, true) + "'";
}

// A table whose columns are as wide as their widest cell.
void print_table(const Reporter& rep, const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width;
    for (auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i) {
            if (width.size() <= i) width.push_back(0);
            width[i] = std::max(width[i], row[i].size());
        }
    for (auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        rep.line(line);
    }
}

int run_headers(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    HeaderList headers = HeaderList::load(Paths::from_env());
    for (int i = 0; i < headers.size(); ++i) {
        if (rep.json())
            rep.object(Json::object().set("number", i).set("name", headers.name(i)));
        else
            rep.line(std::to_string(i) + "\t" + std::string(headers.name(i)));
    }
    rep.info("header list: " + headers.source());
    return 0;
}

int run_show(const Program& prog, const Args& a, Store& store, const FilterOwner& o, const HeaderList& headers) {
    Reporter rep(prog.name, prog.common);
    auto rules = store.filters(o.domain.ref(), o.local);
    if (rep.json()) {
        for (auto& r : rules) rep.object(rule_json(r, headers, o.address()));
        return 0;
    }
    if (a.raw) {  // IndiMail's -r: no email name header comparison keyword folder action, blanks as '~'
        auto tilde = [](std::string s) {
            for (char& c : s)
                if (c == ' ' || c == '\t') c = '~';
            return s;
        };
        for (auto& r : rules) {
            std::string act = r.action.size() > 1 && r.action[0] == '2' ? r.action.substr(1)
                              : r.action != "0"                         ? "Bounce"
                              : r.folder == kNoDeliver                  ? "Vapour"
                                                                        : "Deliver";
            rep.line(std::to_string(r.number) + " " + o.address() + " " + tilde(r.name) + " " +
                     std::to_string(r.header) + " " + std::to_string(r.comparison) + " " +
                     (r.keyword.empty() ? "N/A" : tilde(r.keyword)) + " " + r.folder + " " + act);
        }
        return 0;
    }
    if (rules.empty()) {
        rep.line("no filters for " + o.address());
        return 0;
    }
    std::vector<std::vector<std::string>> rows{{"No", "Name", "Header", "Comparison", "Keyword", "Folder", "Action"}};
    for (auto& r : rules)
        rows.push_back({std::to_string(r.number), r.name, header_text(r, headers), comparison_text(r),
                        r.keyword.empty() ? "N/A" : r.keyword, r.folder, describe_bounce_action(r.action)});
    rep.line("filters for " + o.address() + " (" + std::string(store.backend()) + " store):");
    print_table(rep, rows);
    return 0;
}

int report_change(const Program& prog, const std::string& verb, const FilterRule& r, const FilterOwner& o,
                  const HeaderList& headers, const ChangeReport& report) {
    Reporter rep(prog.name, prog.common);
    bool dry = prog.common.dry_run;
    std::string what = verb + " filter " + std::to_string(r.number) + " '" + r.name + "' for " + o.address();
    if (!dry) audit(prog.name, what + ": " + test_text(r, headers) + " -> " + r.folder + ", " + r.action);
    if (rep.json()) {
        Json j = Json::object();
        j.set("address", o.address()).set("status", (dry ? "would-" : "") + verb);
        j.set("filter", rule_json(r, headers, o.address()));
        if (rep.show_steps()) j.set("steps", report.steps);
        rep.object(j);
        return 0;
    }
    rep.steps(report.steps);
    if (!dry && !prog.common.quiet) rep.line(what);
    return 0;
}

FilterRule rule_from(const Args& a, const HeaderList& headers, const Reporter& rep) {
    FilterRule r;
    r.name = a.name.value_or("");
    r.comparison = comparison_number(*a.comparison);
    if (r.comparison == static_cast<int>(Comparison::not_my_id)) {
        if (a.header || a.keyword)
            rep.warning("-h and -k are ignored: '" + std::string(comparison_name(Comparison::not_my_id)) +
                        "' tests To, Cc and Bcc");
    } else {
        if (!a.header) throw Error(Exit::usage, "-h HEADER is needed with comparison " + *a.comparison);
        if (!a.keyword) throw Error(Exit::usage, "-k KEYWORD is needed with comparison " + *a.comparison);
        r.header = header_number(*a.header, headers);
        r.keyword = *a.keyword;
    }
    r.folder = *a.folder;
    r.action = a.action.value_or("0");
    return r;
}

int run_test(const Program& prog, const Args& a, Store& store, const FilterOwner& o, const HeaderList& headers) {
    Reporter rep(prog.name, prog.common);
    std::string raw;
    if (a.message_file) {
        std::ifstream f(*a.message_file, std::ios::binary);
        if (!f) throw sys_error(Exit::noinput, "cannot read the message", *a.message_file, errno);
        raw.assign(std::istreambuf_iterator<char>(f), {});
    } else {
        raw.assign(std::istreambuf_iterator<char>(std::cin), {});
    }
    Message m = parse_message(raw);
    std::optional<std::filesystem::path> maildir;
    if (o.mailbox) maildir = std::filesystem::path(o.mailbox->dir) / "Maildir";
    auto chain = filter_chain(store, o.domain, o.local, maildir);
    FilterEngine engine(chain, headers);
    FilterDecision d = engine.evaluate(m, {o.address()}, true);

    std::size_t in_parts = 0;
    for (auto& f : m.headers) in_parts += f.part > 0;
    if (rep.json()) {
        Json trace = Json::array();
        for (auto& t : d.trace)
            trace.push(Json::object()
                           .set("stage", to_string(t.stage))
                           .set("address", t.address)
                           .set("number", t.rule.number)
                           .set("name", t.rule.name)
                           .set("test", test_text(t.rule, headers))
                           .set("outcome", to_string(t.outcome))
                           .set("detail", t.detail));
        Json j = Json::object();
        j.set("address", o.address()).set("matched", d.matched).set("decision", describe_decision(d));
        const char* delivery = d.delivery == FilterDecision::Delivery::inbox    ? "inbox"
                               : d.delivery == FilterDecision::Delivery::folder ? "folder"
                                                                                : "discard";
        j.set("delivery", delivery)
            .set("folder", d.delivery == FilterDecision::Delivery::folder ? Json(d.folder) : Json());
        j.set("bounce", d.action.bounce);
        if (d.action.forward == BounceAction::none)
            j.set("forward", Json());
        else
            j.set("forward", Json::object()
                                 .set("kind", d.action.forward == BounceAction::address ? "address" : "program")
                                 .set("target", d.action.target));
        j.set("rule", d.matched ? rule_json(d.rule, headers, d.address) : Json());
        j.set("trace", std::move(trace)).set("notes", d.notes);
        j.set("message", Json::object()
                             .set("bytes", m.size)
                             .set("fields", m.headers.size())
                             .set("mime_parts", m.parts)
                             .set("parts_truncated", m.parts_truncated));
        rep.object(j);
        return d.matched ? 0 : 1;
    }
    std::string parts;
    if (m.parts)
        parts = " (" + std::to_string(in_parts) + " of them in " + std::to_string(m.parts) + " MIME parts" +
                (m.parts_truncated ? ", more not read" : "") + ")";
    rep.line("message: " + std::to_string(m.headers.size()) + " header fields" + parts + ", " + std::to_string(m.size) +
             " bytes");
    if (prog.common.verbose > 0)
        for (auto& f : m.headers)
            rep.line("  " + printable(f.name) + ": " + printable(f.value, true) +
                     (f.part ? " [part " + std::to_string(f.part) + "]" : ""));
    bool decided = false;
    for (auto& set : chain) {
        std::string head = set.address + ": ";
        if (decided) {
            rep.line(head + "not reached");
            continue;
        }
        if (!set.skipped.empty()) {
            rep.line(head + "not applied, " + set.skipped);
            continue;
        }
        std::size_t n = set.rules.size();
        rep.line(head + (n == 0 ? "no rules" : std::to_string(n) + (n == 1 ? " rule" : " rules")));
        for (auto& t : d.trace) {
            if (t.address != set.address) continue;
            std::string outcome = to_string(t.outcome);
            if (!t.detail.empty()) outcome += " (" + printable(t.detail, true) + ")";
            rep.line("  filter " + std::to_string(t.rule.number) + " '" + printable(t.rule.name, true) +
                     "': " + test_text(t.rule, headers) + ": " + outcome);
        }
        decided = d.matched && d.address == set.address;
    }
    rep.line("result: " + describe_decision(d));
    return d.matched ? 0 : 1;
}

int run(const Program& prog, const Args& a) {
    Reporter rep(prog.name, prog.common);
    bool rule_options = a.name || a.header || a.comparison || a.keyword || a.folder || a.action;
    int modes = a.show + a.insert + a.remove.has_value() + a.update.has_value() + a.test + a.list_headers;
    if (modes != 1) throw Error(Exit::usage, "give one of -s, -i, -d N, -u N, --test or --headers");
    if (a.raw && !a.show) throw Error(Exit::usage, "-r goes with -s");
    if (a.message_file && !a.test) throw Error(Exit::usage, "--message goes with --test");
    if (rule_options && !a.insert && !a.update) throw Error(Exit::usage, "-t, -h, -c, -k, -f and -b go with -i or -u");
    if (a.list_headers) return run_headers(prog);
    if (a.address.empty()) throw Error(Exit::usage, "no ADDRESS given (user@domain, prefilt@domain, postfilt@domain)");

    Paths paths = Paths::from_env();
    Address addr = parse_address(a.address);
    HeaderList headers = HeaderList::load(paths);
    bool changes = a.insert || a.remove || a.update;
    if (a.insert && (!a.name || !a.comparison || !a.folder))
        throw Error(Exit::usage, "-i needs -t NAME, -c COMPARISON and -f FOLDER (and -h, -k but for comparison 5)");
    std::optional<FileLock> lock = changes ? lock_for_change(paths, prog.common) : std::nullopt;
    auto store = open_store(paths, prog.mysql);
    FilterOwner o = filter_owner(paths, *store, addr);
    if (a.show) return run_show(prog, a, *store, o, headers);
    if (a.test) return run_test(prog, a, *store, o, headers);

    ChangeReport report;
    bool dry = prog.common.dry_run;
    if (a.insert) {
        FilterRule r = add_filter(*store, o, rule_from(a, headers, rep), headers, dry, &report);
        return report_change(prog, "added", r, o, headers, report);
    }
    if (a.remove) {
        FilterRule r = delete_filter(*store, o, *a.remove, dry, &report);
        return report_change(prog, "removed", r, o, headers, report);
    }
    FilterUpdate u;
    u.name = a.name;
    if (a.header) u.header = header_number(*a.header, headers);
    if (a.comparison) u.comparison = comparison_number(*a.comparison);
    u.keyword = a.keyword;
    u.folder = a.folder;
    u.action = a.action;
    if (u.empty()) throw Error(Exit::usage, "-u: nothing to change: give -t, -h, -c, -k, -f or -b");
    FilterRule r = update_filter(*store, o, *a.update, u, headers, dry, &report);
    if (r.comparison == static_cast<int>(Comparison::not_my_id) && (a.header || a.keyword))
        rep.warning("-h and -k are ignored: '" + std::string(comparison_name(Comparison::not_my_id)) +
                    "' tests To, Cc and Bcc");
    return report_change(prog, "changed", r, o, headers, report);
}

std::vector<std::string> complete_filter_addresses(const std::string& prefix) {
    auto out = complete_addresses(prefix);
    for (auto& d : complete_domain_names(prefix))
        for (const char* who : {"prefilt@", "postfilt@"}) out.push_back(who + d);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vcfilter");
    Args a;
    CLI::App app{
        "Show, add, change and remove the mail filter rules of an address (IndiMail's vfilter table), "
        "and test them on a message.",
        "vcfilter"};
    app.set_help_flag("--help", "Print this help message and exit");
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("ADDRESS", a.address, "user@domain, or prefilt@domain / postfilt@domain for the whole domain");
    app.add_flag("-s,--show", a.show, "Show the rules");
    app.add_flag("-r,--raw", a.raw, "With -s: IndiMail's raw form, one rule a line");
    app.add_flag("-i,--insert", a.insert, "Add a rule (-t, -c, -f; -h and -k but for comparison 5; -b)");
    app.add_option("-d,--delete", a.remove, "Remove rule N")->type_name("N");
    app.add_option("-u,--update", a.update, "Change rule N: the fields given by -t -h -c -k -f -b")->type_name("N");
    app.add_flag("--test", a.test,
                 "Read a message (standard input, or --message) and show every rule tried, the one that "
                 "matched and what it does; deliver nothing");
    app.add_option("--message", a.message_file, "With --test: read the message from FILE")->type_name("FILE");
    app.add_flag("--headers", a.list_headers, "List the header numbers and names");
    app.add_option("-t,--name", a.name, "The rule's name (at most 32 characters)")->type_name("NAME");
    auto* h = app.add_option("-h,--header", a.header, "The header to test: a number or a name (see --headers)")
                  ->type_name("HEADER");
    auto* c = app.add_option("-c,--comparison", a.comparison,
                             "0 Equals, 1 Contains, 2 Does not contain, 3 Starts with, 4 Ends with, 5 My id not "
                             "in To, CC, Bcc, 6 Numerical Logical Expression, 7 RegExp (number or name)")
                  ->type_name("COMPARISON");
    app.add_option("-k,--keyword", a.keyword,
                   "What to compare with (at most 64 characters); with 6 an expression over %p such as '%p > 5', "
                   "with 7 a regular expression")
        ->type_name("KEYWORD");
    app.add_option("-f,--folder", a.folder, "Where matching mail goes: Inbox, a folder name, or /NoDeliver")
        ->type_name("FOLDER");
    app.add_option("-b,--action", a.action,
                   "0 deliver (default), 1 bounce, 2&address or 2|program: a copy goes there too, 3&address or "
                   "3|program: both")
        ->type_name("ACTION");
    app.add_flag("-C,--cluster", a.cluster,
                 "Accepted for IndiMail's scripts: qvmail always uses the database of the host's store");
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "Exit status: 0 done (--test: a rule matched); 1 --test: no rule matched; 6 no such rule; 9 the\n"
        "address has this rule already; 64 usage; 65 bad address, header, comparison, keyword, folder or\n"
        "action, 255 rules already, or a malformed rules file; 66 the --message file cannot be read; 67 no\n"
        "such mailbox; 68 no such domain; 69 database unavailable; 73/74/77 files cannot be written; 75\n"
        "another command holds the lock; 78 a broken etc/headerlist. See vcfilter(8).");
    app.callback([&] { prog.action = [&] { return run(prog, a); }; });
    prog.positional_completions[&app] = complete_filter_addresses;
    prog.value_completions[h] = [](const std::string&) {
        std::vector<std::string> out;
        HeaderList headers = HeaderList::load(Paths::from_env());
        for (int i = 0; i < headers.size(); ++i) out.emplace_back(headers.name(i));
        return out;
    };
    prog.value_completions[c] = [](const std::string&) {
        std::vector<std::string> out;
        for (int i = 0; i < kComparisonCount; ++i) out.emplace_back(comparison_slug(static_cast<Comparison>(i)));
        return out;
    };
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vcfilter
