// valias - show and change the delivery lines of aliases. See valias(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/alias.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/text.hpp"

namespace qv::cmd_valias {

namespace {

struct Request {
    bool show = false, track = false;
    std::optional<std::string> insert, remove, update;
    std::optional<std::string> target;  // ADDRESS | DOMAIN
};

void print(const Reporter& rep, const std::vector<AliasEntry>& entries, const std::string* tracked = nullptr) {
    for (const auto& e : entries) {
        if (rep.json()) {
            Json j = Json::object();
            j.set("alias", e.address).set("lines", e.lines);
            rep.object(j);
            continue;
        }
        if (tracked) {
            rep.line(e.address + " -> " + *tracked);
            continue;
        }
        for (const auto& l : e.lines) rep.line(e.address + " -> " + l);
    }
}

int run(const Program& prog, const Request& req) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    const bool changing = req.insert || req.remove || req.update;
    if (req.update && !req.insert) throw Error(Exit::usage, "-u OLD_LINE needs -i NEW_LINE, the line that replaces it");
    if (req.remove && req.insert) throw Error(Exit::usage, "-d and -i are two changes: make them one at a time (or -u OLD -i NEW)");
    if ((changing || req.track) && (req.show || (req.track && changing)))
        throw Error(Exit::usage, "one of -s, -S, -i, -d or -u -i at a time");
    if ((changing || req.track) && (!req.target || req.target->find('@') == std::string::npos))
        throw Error(Exit::usage, std::string(req.track ? "-S" : "-i, -d and -u") + " need an address: alias@domain");

    if (!changing) {
        auto store = open_store(paths, prog.mysql);
        if (req.track) {
            Address to = parse_address(*req.target);
            std::string shown = to.str();
            print(rep, aliases_forwarding_to(paths, *store, to), &shown);
            return 0;
        }
        if (!req.target) {
            print(rep, list_aliases(paths, *store, {}));
            return 0;
        }
        if (req.target->find('@') == std::string::npos) {
            print(rep, list_aliases(paths, *store, ascii_lower(*req.target)));
            return 0;
        }
        Address a = parse_address(*req.target);
        auto found = list_aliases(paths, *store, a.domain, a.local);
        if (found.empty()) throw Error(Exit::missing, "no alias " + a.str());
        print(rep, found);
        return 0;
    }

    Address a = parse_address(*req.target);
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    AliasChange change;
    if (req.update) {
        change.kind = AliasChange::update;
        change.old_line = *req.update;
        change.line = *req.insert;
    } else if (req.remove) {
        change.kind = AliasChange::remove;
        change.line = *req.remove;
    } else {
        change.line = *req.insert;
    }
    AliasChangeResult r = change_alias(paths, *store, a, change, prog.common.dry_run);
    const char* verbs[3][2] = {{"inserted", "would-insert"}, {"deleted", "would-delete"}, {"updated", "would-update"}};
    const char* status = verbs[change.kind][prog.common.dry_run ? 1 : 0];
    if (!prog.common.dry_run) audit(prog.name, std::string(status) + " alias line of " + a.str() + ": " + r.line);
    if (r.mailbox_first)
        rep.warning(a.str() + " is also a mailbox, which takes its mail first: these lines are used only once it is gone");
    if (rep.json()) {
        Json j = Json::object();
        j.set("alias", a.str()).set("status", status).set("lines", r.lines);
        if (rep.show_steps()) j.set("steps", r.steps);
        rep.object(j);
        return 0;
    }
    rep.steps(r.steps);
    if (prog.common.dry_run) return 0;
    const std::string& line = r.line;
    if (change.kind == AliasChange::insert) rep.line("added " + a.str() + " -> " + line);
    if (change.kind == AliasChange::update) rep.line("replaced " + a.str() + " -> " + r.old_line + " by " + line);
    if (change.kind == AliasChange::remove)
        rep.line(r.lines.empty() ? "removed " + a.str() + " -> " + line + " (its last line: the alias is gone)"
                                 : "removed " + a.str() + " -> " + line);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("valias");
    Request req;
    CLI::App app{
        "Show or change an alias: the delivery lines (&address, |program, /Maildir/) of an address that has no "
        "mailbox. With no change option, shows the aliases of ADDRESS, of DOMAIN, or of every domain.",
        "valias"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_flag("-s,--show", req.show, "Show the lines (the default)");
    app.add_flag("-S,--track", req.track, "Show the aliases that forward to ADDRESS");
    app.add_option("-i,--insert", req.insert, "Add LINE to the alias (with -u: the line that replaces OLD_LINE)")
        ->type_name("LINE");
    app.add_option("-d,--delete", req.remove, "Remove LINE from the alias (its last line: the alias goes)")
        ->type_name("LINE");
    app.add_option("-u,--update", req.update, "Replace OLD_LINE by the -i line")->type_name("OLD_LINE");
    app.add_option("ADDRESS", req.target, "alias@domain, or a domain to show all its aliases");
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "A line is &user@domain (forward), |command (a program) or /path/Maildir/ (./ under the domain\n"
        "directory). A change that would make mail loop between local aliases is refused.\n"
        "Exit status: 0 done; 6 no such alias or line; 9 the alias has the line already; 64 usage; 65 bad\n"
        "address or line, or a loop; 68 no such domain; 69 the database is down; 73/74/77 files cannot be\n"
        "changed; 75 another command holds the lock. See valias(8).");
    app.callback([&] { prog.action = [&] { return run(prog, req); }; });
    prog.positional_completions[&app] = complete_aliases;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_valias
