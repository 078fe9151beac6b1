// vrenameuser - rename a mailbox, or move it to another domain. See vrenameuser(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

namespace qv::cmd_vrenameuser {

namespace {

int run(const Program& prog, const std::string& from_arg, const std::string& to_arg) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    Address from = parse_address(from_arg), to = parse_address(to_arg);
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    RenameUserResult r = rename_user(paths, *store, from, to, prog.common.dry_run);
    const std::string now = r.user.name + "@" + to.domain;
    if (!prog.common.dry_run) audit(prog.name, "renamed mailbox " + from.str() + " to " + now + " (" + r.user.dir + ")");
    if (rep.json()) {
        Json j = Json::object();
        j.set("from", from.str())
            .set("to", now)
            .set("home", r.user.dir)
            .set("forwards", r.forwards)
            .set("status", prog.common.dry_run ? "would-rename" : "renamed");
        if (rep.show_steps()) j.set("steps", r.steps);
        rep.object(j);
        return 0;
    }
    rep.steps(r.steps);
    if (prog.common.dry_run) return 0;
    rep.line("renamed mailbox " + from.str() + " to " + now);
    for (const auto& a : r.forwards) rep.line("alias " + a + " now forwards to " + now);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vrenameuser");
    std::string from, to;
    CLI::App app{"Rename a mailbox, or move it to another domain of the same owner: its password, flags, quota,\n"
                 "mail, filter rules, logins and relay grants go with it, and aliases that forward to it follow.",
                 "vrenameuser"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("OLD_ADDRESS", from, "The mailbox: user@domain")->required();
    app.add_option("NEW_ADDRESS", to, "Its new address: newuser@domain (the same or another domain)")->required();
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "One change: everything moves, or nothing does.\n"
        "Exit status: 0 renamed; 9 NEW_ADDRESS is a mailbox or an alias, or its home exists; 64 usage; 65 bad\n"
        "address, the same mailbox, or domains of different owners; 67 no such mailbox; 68 no such domain;\n"
        "69 the database is down; 73/74/77 files cannot be changed (a home on another file system is not\n"
        "moved); 75 another command holds the lock. See vrenameuser(8).");
    app.callback([&] { prog.action = [&] { return run(prog, from, to); }; });
    prog.positional_completions[&app] = complete_addresses;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vrenameuser
