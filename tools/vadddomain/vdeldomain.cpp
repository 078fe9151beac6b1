// vdeldomain - remove a virtual domain and all its mailboxes. See vdeldomain(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv::cmd_vdeldomain {

namespace {

int run(const Program& prog, const std::string& name_arg) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    std::string name = normalize_domain(name_arg);
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    Domain d = require_domain(paths, *store, name);
    if (d.alias.empty() && !prog.common.yes && !prog.common.dry_run && on_terminal()) {
        std::size_t users = store->users(d.ref()).size();
        if (!confirm("Remove " + name + " with its " + std::to_string(users) + " mailbox(es) and all their mail?"))
            throw Error(Exit::usage, "not removed");
    }
    ChangeReport report;
    delete_domain(paths, *store, name, prog.common.dry_run, &report);
    if (!prog.common.dry_run) audit(prog.name, "removed domain " + name + " (" + d.dir.string() + ")");
    if (rep.json()) {
        Json j = Json::object();
        j.set("domain", name).set("status", prog.common.dry_run ? "would-remove" : "removed");
        if (rep.show_steps()) j.set("steps", report.steps);
        rep.object(j);
        return 0;
    }
    rep.steps(report.steps);
    if (!prog.common.dry_run)
        rep.line(d.alias.empty() ? "removed domain " + name : "removed alias domain " + name + " (of " + d.name + ")");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vdeldomain");
    std::string domain;
    Unsupported unsupported;
    CLI::App app{
        "Remove a virtual domain: its mailboxes and their mail, its directory, users/assign line and "
        "control-file entries.",
        "vdeldomain"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("DOMAIN", domain, "The domain to remove")->required();
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_yes | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    unsupported.add(app, "-c", false, "clustered domains are not supported");
    unsupported.add(app, "-T", false, "ETRN/AUTOTURN domains are not supported");
    app.footer(
        "Asks for confirmation on a terminal unless --yes.\n"
        "Exit status: 0 removed; 64 usage or not confirmed; 65 bad name; 68 no such domain; 73/74/77 files\n"
        "cannot be changed (nothing is changed); 75 another command holds the lock. See vdeldomain(8).");
    app.callback([&] {
        unsupported.check();
        prog.action = [&] { return run(prog, domain); };
    });
    prog.positional_completions[&app] = complete_domain_names;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vdeldomain
