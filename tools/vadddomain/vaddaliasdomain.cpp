// vaddaliasdomain - make a domain an alias of another. See vaddaliasdomain(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv::cmd_vaddaliasdomain {

namespace {

int run(const Program& prog, const std::string& alias_arg, const std::string& real_arg) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    std::string alias = normalize_domain(alias_arg), real = normalize_domain(real_arg);
    if (alias == real) throw Error(Exit::dataerr, "a domain cannot be an alias of itself: " + alias);
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    ChangeReport report;
    add_alias_domain(paths, *store, alias, real, prog.common.dry_run, &report);
    if (!prog.common.dry_run) audit(prog.name, "added alias domain " + alias + " of " + real);
    if (rep.json()) {
        Json j = Json::object();
        j.set("domain", alias).set("alias_of", real).set("status", prog.common.dry_run ? "would-add" : "added");
        if (rep.show_steps()) j.set("steps", report.steps);
        rep.object(j);
        return 0;
    }
    rep.steps(report.steps);
    if (!prog.common.dry_run) rep.line("added alias domain " + alias + " of " + real);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vaddaliasdomain");
    std::string alias, real;
    CLI::App app{"Make ALIAS_DOMAIN an alias of DOMAIN: mail for any address of ALIAS_DOMAIN is delivered as for "
                 "the same address of DOMAIN (IndiMail's order: the alias first).",
                 "vaddaliasdomain"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("ALIAS_DOMAIN", alias, "The new name")->required();
    app.add_option("DOMAIN", real, "The real domain it stands for")->required();
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "vdeldomain ALIAS_DOMAIN removes it again; removing DOMAIN removes its alias domains too.\n"
        "Exit status: 0 added; 9 ALIAS_DOMAIN exists; 64 usage; 65 a bad name, or DOMAIN is itself an alias;\n"
        "68 no such DOMAIN; 73/74/77 files cannot be changed; 75 another command holds the lock. See\n"
        "vaddaliasdomain(8).");
    app.callback([&] { prog.action = [&] { return run(prog, alias, real); }; });
    prog.positional_completions[&app] = complete_domain_names;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vaddaliasdomain
