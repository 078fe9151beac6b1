// vdeluser - remove a mailbox and its mail. See vdeluser(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

namespace qv::cmd_vdeluser {

namespace {

int run(const Program& prog, const std::string& address) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    Address a = parse_address(address);
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    Domain d = require_domain(paths, *store, a.domain);
    UserRecord u = require_any_user(*store, d, a.local).user;
    if (is_role_account(a.local) && !prog.common.yes && !prog.common.dry_run) {
        if (!on_terminal())
            throw Error(Exit::usage, a.str() + " is a role account (RFC 2142); give --yes to remove it anyway");
        if (!confirm("Remove the role account " + a.str() + " (RFC 2142)?")) throw Error(Exit::usage, "not removed");
    }
    ChangeReport report;
    delete_user(paths, *store, a, prog.common.dry_run, &report);
    if (!prog.common.dry_run) audit(prog.name, "removed mailbox " + a.str() + " (" + u.dir + ")");
    if (rep.json()) {
        Json j = Json::object();
        j.set("address", a.str()).set("status", prog.common.dry_run ? "would-remove" : "removed");
        if (rep.show_steps()) j.set("steps", report.steps);
        rep.object(j);
        return 0;
    }
    rep.steps(report.steps);
    if (!prog.common.dry_run) rep.line("removed mailbox " + a.str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vdeluser");
    std::string address;
    CLI::App app{
        "Remove a mailbox: its record, its home directory with all its mail, and aliases that forward "
        "only to it.",
        "vdeluser"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("ADDRESS", address, "The mailbox: user@domain")->required();
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_yes | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "postmaster, abuse and mailer-daemon are removed only after a confirmation or with --yes.\n"
        "Exit status: 0 removed; 64 usage or not confirmed; 65 bad address; 67 no such mailbox; 68 no such\n"
        "domain; 73/74/77 files cannot be changed; 75 another command holds the lock. See vdeluser(8).");
    app.callback([&] { prog.action = [&] { return run(prog, address); }; });
    prog.positional_completions[&app] = complete_addresses;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vdeluser
