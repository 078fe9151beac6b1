// vrenamedomain - rename a virtual domain. See vrenamedomain(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv::cmd_vrenamedomain {

namespace {

int run(const Program& prog, const std::string& from_arg, const std::string& to_arg) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    std::string from = normalize_domain(from_arg), to = normalize_domain(to_arg);
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    RenameDomainResult r = rename_domain(paths, *store, from, to, prog.common.dry_run);
    const std::string what = r.alias ? "alias domain " + from + " (of " + r.real + ")" : "domain " + from;
    if (!prog.common.dry_run) audit(prog.name, "renamed " + what + " to " + to);
    if (rep.json()) {
        Json j = Json::object();
        j.set("from", from).set("to", to).set("status", prog.common.dry_run ? "would-rename" : "renamed");
        if (r.alias) j.set("alias_of", r.real);
        else j.set("mailboxes", static_cast<std::uint64_t>(r.mailboxes)).set("forwards", r.forwards);
        if (rep.show_steps()) j.set("steps", r.steps);
        rep.object(j);
        return 0;
    }
    rep.steps(r.steps);
    if (prog.common.dry_run) return 0;
    rep.line("renamed " + what + " to " + to +
             (r.alias ? "" : " (" + std::to_string(r.mailboxes) + " mailbox(es))"));
    for (const auto& a : r.forwards) rep.line("alias " + a + ": its forwards to " + from + " now go to " + to);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vrenamedomain");
    std::string from, to;
    CLI::App app{"Rename a virtual domain: its directory, mailboxes and their mail, users/assign, the control files,\n"
                 "the store's rows and the aliases, grants and links that name it, in one change.",
                 "vrenamedomain"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("OLD_DOMAIN", from, "The domain (or alias domain) to rename")->required();
    app.add_option("NEW_DOMAIN", to, "Its new name")->required();
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "Exit status: 0 renamed; 9 NEW_DOMAIN exists (as a domain, a route or a directory); 64 usage; 65 a bad\n"
        "name; 68 no such OLD_DOMAIN; 69 the database is down; 73/74/77 files cannot be changed (a tree on\n"
        "another file system is not moved); 75 another command holds the lock. See vrenamedomain(8).");
    app.callback([&] { prog.action = [&] { return run(prog, from, to); }; });
    prog.positional_completions[&app] = complete_domain_names;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vrenamedomain
