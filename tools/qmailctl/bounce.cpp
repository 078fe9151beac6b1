// qmailctl bounce - how qmail-send treats bounces: bounce.envrules (variables per bounce recipient), and
// the BOUNCEPROCESSOR and BOUNCEQUEUE variables of the qmail-send service.
#include <CLI/CLI.hpp>

#include <map>

#include "qmailctl.hpp"
#include "qvmail/bounce.hpp"
#include "qvmail/envrules.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"

namespace qv::qmailctl {

namespace {

struct BounceArgs {
    std::string pattern;
    std::vector<std::string> assignments;
    std::uint64_t line = 0;
    std::string address;
    std::string program;
};

// A rule's text as written (backslashes too), unless it holds control characters.
std::string as_written(std::string_view text) {
    for (unsigned char c : text)
        if (c < 0x20 || c == 0x7f) return printable(text, true);
    return std::string(text);
}

Json bounce_env_json(const std::vector<EnvAssignment>& env) {
    Json j = Json::array();
    for (auto& a : env) j.push(Json::object().set("variable", a.name).set("value", a.value ? Json(*a.value) : Json()));
    return j;
}

// "wildmat patterns of control/bounce.envrules (the default; no QREGEX)"
std::string describe(const BounceRulesSetting& s) {
    return std::string(to_string(s.kind)) + " patterns of " + s.file.string() + " (" + s.file_source + "; " +
           s.kind_source + ")";
}

int run_bounce_rules_list(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    BounceRulesSetting setting = bounce_rules_setting(paths);
    std::vector<std::string> problems;
    for (auto& r : load_envrules(setting.file, setting.kind, &problems)) {
        if (rep.json())
            rep.object(Json::object()
                           .set("line", r.line)
                           .set("pattern", r.pattern)
                           .set("env", bounce_env_json(r.env))
                           .set("text", r.text)
                           .set("file", setting.file.string()));
        else
            rep.line(std::to_string(r.line) + "\t" + as_written(r.text));
    }
    for (auto& p : problems) rep.warning(p);
    rep.info(describe(setting));
    return 0;
}

int run_bounce_rules_add(const Program& prog, const BounceArgs& a) {
    Paths paths = Paths::from_env();
    std::vector<EnvAssignment> env;
    for (auto& s : a.assignments) env.push_back(parse_assignment(s));
    auto lock = lock_for_change(paths, prog.common);
    auto steps = add_bounce_rule(paths, a.pattern, env, prog.common.dry_run);
    std::string line = format_envrule(a.pattern, env);
    std::string file = bounce_rules_setting(paths).file.string();
    return report_change(prog, "added " + as_written(line) + " to " + file, steps,
                         Json::object().set("rule", line).set("file", file));
}

int run_bounce_rules_remove(const Program& prog, const BounceArgs& a) {
    Paths paths = Paths::from_env();
    auto lock = lock_for_change(paths, prog.common);
    auto steps = remove_bounce_rule(paths, a.line, prog.common.dry_run);
    std::string file = bounce_rules_setting(paths).file.string();
    return report_change(prog, "removed line " + std::to_string(a.line) + " of " + file, steps,
                         Json::object().set("line", a.line).set("file", file));
}

int run_bounce_rules_test(const Program& prog, const BounceArgs& a) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    BounceRulesSetting setting = bounce_rules_setting(paths);
    PatternKind kind = setting.kind;
    std::string address = a.address == "<>" ? "" : a.address;
    std::vector<std::string> problems;
    auto rules = load_envrules(setting.file, kind, &problems);
    for (auto& p : problems) rep.warning(p + " (skipped)");
    std::map<std::string, std::string> env;
    auto changes = apply_envrules(rules, address, kind, env);
    std::map<std::string, std::optional<std::string>> result;  // the last change of each variable
    for (auto& c : changes) result[c.assignment.name] = c.assignment.value;
    std::string shown = address.empty() ? "<>" : address;
    if (rep.json()) {
        Json matched = Json::array(), list = Json::array();
        const EnvRule* last = nullptr;
        for (auto& c : changes) {
            if (c.rule != last) matched.push(Json::object().set("line", c.rule->line).set("text", c.rule->text));
            last = c.rule;
        }
        Json env_after = Json::object();
        for (auto& [name, value] : result) env_after.set(name, value ? Json(*value) : Json());
        rep.object(Json::object()
                       .set("address", shown)
                       .set("patterns", to_string(kind))
                       .set("file", setting.file.string())
                       .set("matched", std::move(matched))
                       .set("environment", std::move(env_after)));
        return changes.empty() ? 1 : 0;
    }
    rep.line("bounces for " + shown + ": " + describe(setting));
    const EnvRule* last = nullptr;
    for (auto& c : changes) {
        if (c.rule != last) rep.line("  line " + std::to_string(c.rule->line) + ": " + as_written(c.rule->text));
        last = c.rule;
        rep.line("    " + (c.assignment.value ? c.assignment.name + "=" + as_written(*c.assignment.value)
                                              : "unset " + c.assignment.name));
    }
    if (changes.empty()) {
        rep.line("  no rule matches: the environment is left as it is");
        return 1;
    }
    std::string summary;
    for (auto& [name, value] : result)
        summary += (summary.empty() ? "" : "; ") + (value ? name + "=" + as_written(*value) : name + " unset");
    rep.line("result: " + summary);
    return 0;
}

int run_bounce_variable_set(const Program& prog, const char* name, const BounceArgs& a) {
    Paths paths = Paths::from_env();
    check_bounce_program(a.program);
    auto lock = lock_for_change(paths, prog.common);
    auto steps = set_service_variable(paths, kSendService, name, a.program, prog.common.dry_run);
    std::string file = service_variable_file(paths, kSendService, name).string();
    return report_change(
        prog, "set " + std::string(name) + "=" + a.program + " in " + file + " (qmail-send reads it when it starts)",
        steps, Json::object().set("variable", name).set("value", a.program).set("file", file));
}

int run_bounce_variable_unset(const Program& prog, const char* name) {
    Paths paths = Paths::from_env();
    auto lock = lock_for_change(paths, prog.common);
    auto steps = unset_service_variable(paths, kSendService, name, prog.common.dry_run);
    std::string file = service_variable_file(paths, kSendService, name).string();
    return report_change(prog, "unset " + std::string(name) + ": removed " + file, steps,
                         Json::object().set("variable", name).set("file", file));
}

int run_bounce_variable_show(const Program& prog, const char* name) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    auto value = read_service_variable(paths, kSendService, name);
    std::string file = service_variable_file(paths, kSendService, name).string();
    std::optional<std::string> problem;
    if (value) try {
            check_bounce_program(*value);
        } catch (const Error& e) {
            problem = e.what();
        }
    if (rep.json()) {
        rep.object(Json::object()
                       .set("variable", name)
                       .set("value", value ? Json(*value) : Json())
                       .set("file", file)
                       .set("problem", problem ? Json(*problem) : Json()));
    } else if (value) {
        rep.line(std::string(name) + "=" + printable(*value, true));
        if (problem) rep.warning(*problem);
    } else {
        rep.line(std::string(name) + " is not set");
    }
    return value ? 0 : 1;
}

}  // namespace

void setup_bounce(CLI::App& app, Program& prog) {
    static BounceArgs args;
    CLI::App* b =
        app.add_subcommand("bounce", "How qmail-send treats bounces: bounce.envrules, BOUNCEPROCESSOR and BOUNCEQUEUE");
    b->require_subcommand(1);
    const unsigned change = opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait;

    CLI::App* rules = b->add_subcommand(
        "rules", "control/bounce.envrules (or the file BOUNCERULES names): variables per bounce recipient");
    rules->require_subcommand(1);
    CLI::App* rl = rules->add_subcommand("list", "Show the rules with their line numbers");
    add_common_options(*rl, prog.common, opt_json | opt_verbose | opt_quiet);
    rl->callback([&prog] { prog.action = [&prog] { return run_bounce_rules_list(prog); }; });
    CLI::App* ra = rules->add_subcommand("add",
                                         "Add a rule: for recipients matching PATTERN, set (VAR=VALUE) or unset "
                                         "(VAR=) variables");
    ra->add_option("PATTERN", args.pattern,
                   "A wildmat pattern (a regular expression with QREGEX); '' or <> for the null sender")
        ->required();
    ra->add_option("ASSIGNMENT", args.assignments, "VAR=VALUE, or VAR= to unset VAR")->required();
    add_common_options(*ra, prog.common, change);
    ra->callback([&prog] { prog.action = [&prog] { return run_bounce_rules_add(prog, args); }; });
    CLI::App* rr = rules->add_subcommand("remove", "Remove the rule on line N (as list shows it)");
    rr->add_option("N", args.line, "The rule's line number")->required();
    add_common_options(*rr, prog.common, change);
    rr->callback([&prog] { prog.action = [&prog] { return run_bounce_rules_remove(prog, args); }; });
    CLI::App* rt = rules->add_subcommand(
        "test", "Show the rules that match a sender's bounces and what they change (exit 0 some match, 1 none)");
    rt->add_option("ADDRESS", args.address, "The original sender of the failed message; <> for the null sender")
        ->required();
    add_common_options(*rt, prog.common, opt_json | opt_quiet);
    rt->callback([&prog] { prog.action = [&prog] { return run_bounce_rules_test(prog, args); }; });

    struct Variable {
        const char* command;
        const char* name;
        const char* help;
    };
    for (auto v :
         {Variable{"processor", "BOUNCEPROCESSOR",
                   "BOUNCEPROCESSOR: a program run for every bounce (exit 1 discards it)"},
          Variable{"queue", "BOUNCEQUEUE", "BOUNCEQUEUE: the program that queues bounces (QMAILQUEUE for them)"}}) {
        const char* name = v.name;
        CLI::App* s = b->add_subcommand(v.command, v.help);
        s->require_subcommand(1);
        CLI::App* set = s->add_subcommand("set", std::string("Set ") + name + " in qmail-send's variables");
        set->add_option("PATH", args.program, "An executable program, by its absolute path")->required();
        add_common_options(*set, prog.common, change);
        set->callback(
            [&prog, name] { prog.action = [&prog, name] { return run_bounce_variable_set(prog, name, args); }; });
        CLI::App* unset = s->add_subcommand("unset", std::string("Remove ") + name + " from qmail-send's variables");
        add_common_options(*unset, prog.common, change);
        unset->callback(
            [&prog, name] { prog.action = [&prog, name] { return run_bounce_variable_unset(prog, name); }; });
        CLI::App* show = s->add_subcommand("show", std::string("Show ") + name + " (exit 0 set, 1 not set)");
        add_common_options(*show, prog.common, opt_json | opt_quiet);
        show->callback([&prog, name] { prog.action = [&prog, name] { return run_bounce_variable_show(prog, name); }; });
    }

    set_footers(b,
                "Exit status: 0 done (test: a rule matches; show: set); 1 test: no rule matches; show: not set;\n"
                "6 nothing to remove or unset; 9 the rule is there already; 64 usage; 65 bad rule, pattern,\n"
                "variable or program; 73/74/77 files cannot be written; 75 locked. See qmailctl(8).");
}

}  // namespace qv::qmailctl
