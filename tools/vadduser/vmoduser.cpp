// vmoduser - change a mailbox's restriction flags, comment or quota. See vmoduser(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/inactive.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

namespace qv::cmd_vmoduser {

namespace {

struct Args {
    std::string address;
    std::map<char, bool> letters;  // IndiMail's flag letters
    bool toggle = false, clear_all = false;
    std::vector<std::string> set, clear;
    std::optional<std::string> gecos, quota;
    bool active = false, inactive = false;
    std::optional<std::string> host;
};

std::uint32_t named_flags(const std::vector<std::string>& names) {
    std::uint32_t bits = 0;
    for (auto& n : names) {
        auto b = parse_flag_name(n);
        if (!b) {
            std::string known;
            for (auto& f : user_flags()) known += (known.empty() ? "" : ", ") + std::string(f.name);
            throw Error(Exit::usage, "unknown flag '" + n + "' (known: " + known + ")");
        }
        bits |= *b;
    }
    return bits;
}

// --host: the mailbox moves to another host sharing the database
int move_to_host(const Program& prog, Reporter& rep, const Paths& paths, Store& store, const Address& addr,
                 const std::string& host) {
    const bool dry = prog.common.dry_run;
    MoveMailboxResult r = move_mailbox(paths, store, addr, host, dry);
    if (r.moved && !dry) audit(prog.name, "moved mailbox " + addr.str() + " from host " + r.from_host + " to " + host);
    for (auto& w : r.warnings) rep.warning(w);
    if (rep.json()) {
        Json j = Json::object();
        j.set("address", addr.str())
            .set("status", !r.moved ? "unchanged" : dry ? "would-move" : "moved")
            .set("from_host", r.from_host)
            .set("host", host)
            .set("dir", r.user.dir);
        if (rep.show_steps()) j.set("steps", r.steps);
        rep.object(j);
        return 0;
    }
    if (!r.moved) {
        rep.line(addr.str() + " is on host " + host + " already");
        return 0;
    }
    rep.steps(r.steps);
    if (!dry) rep.line("moved " + addr.str() + " from host " + r.from_host + " to " + host + " (home " + r.user.dir + ")");
    return 0;
}

int run(const Program& prog, const Args& a) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    Address addr = parse_address(a.address);
    std::uint32_t letter_bits = 0;
    for (auto& f : user_flags())
        if (a.letters.at(f.letter)) letter_bits |= f.bit;
    std::uint32_t set_bits = named_flags(a.set), clear_bits = named_flags(a.clear);
    const bool other = letter_bits || set_bits || clear_bits || a.clear_all || a.gecos || a.quota;
    if (!other && !a.active && !a.inactive && !a.host)
        throw Error(Exit::usage,
                    "nothing to change: give flags, --set, --clear, -x, -c, -q, --active, --inactive or --host");
    if (a.host && (other || a.active || a.inactive))
        throw Error(Exit::usage, "--host moves the mailbox and changes nothing else: give the other changes apart");
    std::optional<std::string> quota = a.quota ? std::optional(normalize_quota(*a.quota)) : std::nullopt;
    std::optional<std::string> gecos = a.gecos ? std::optional(check_gecos(*a.gecos)) : std::nullopt;

    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    if (a.host) return move_to_host(prog, rep, paths, *store, addr, *a.host);
    Domain d = require_domain(paths, *store, addr.domain);
    // --active first (the other changes then apply to the active mailbox), --inactive last
    if (a.active) {
        set_mailbox_active(paths, *store, addr, true, prog.common.dry_run);
        if (!prog.common.dry_run) audit(prog.name, "made mailbox " + addr.str() + " active");
    }
    if (!other) {
        if (a.inactive) set_mailbox_active(paths, *store, addr, false, prog.common.dry_run);
        if (a.inactive && !prog.common.dry_run) audit(prog.name, "made mailbox " + addr.str() + " inactive");
        const std::string state = a.active ? "active" : "inactive";
        if (rep.json()) {
            Json j = Json::object();
            j.set("address", addr.str())
                .set("status", prog.common.dry_run ? "would-change" : "changed")
                .set("state", state);
            rep.object(j);
        } else {
            rep.line(std::string(prog.common.dry_run ? "would make " : "made ") + addr.str() + " " + state);
        }
        return 0;
    }
    // (after a dry run of --active the mailbox is still inactive)
    UserRecord u = a.active ? require_any_user(*store, d, addr.local).user : require_user(*store, d, addr.local);
    std::uint32_t before = u.gid_flags;
    if (a.clear_all) u.gid_flags = 0;
    if (a.toggle)
        u.gid_flags ^= letter_bits;
    else
        u.gid_flags |= letter_bits;
    u.gid_flags = (u.gid_flags | set_bits) & ~clear_bits;
    if (gecos) u.gecos = *gecos;
    if (quota) u.quota = *quota;
    update_user(*store, d, u, prog.common.dry_run);
    if (a.inactive) set_mailbox_active(paths, *store, addr, false, prog.common.dry_run);
    if (!prog.common.dry_run)
        audit(prog.name, "changed mailbox " + addr.str() + ": flags " + std::to_string(before) + " -> " +
                             std::to_string(u.gid_flags) + (gecos ? ", comment" : "") +
                             (quota ? ", quota " + *quota : "") + (a.inactive ? ", made inactive" : ""));
    if (rep.json()) {
        Json j = Json::object();
        j.set("address", addr.str())
            .set("status", prog.common.dry_run ? "would-change" : "changed")
            .set("gid", u.gid_flags);
        Json flags = Json::array();
        for (auto& f : user_flags())
            if (u.gid_flags & f.bit) flags.push(std::string(f.name));
        j.set("flags", std::move(flags));
        j.set("gecos", u.gecos);
        j.set("quota", u.quota);
        j.set("state", a.inactive ? "inactive" : "active");
        rep.object(j);
        return 0;
    }
    std::string flags;
    for (auto& f : user_flags())
        if (u.gid_flags & f.bit) flags += (flags.empty() ? "" : ",") + std::string(f.name);
    rep.line(std::string(prog.common.dry_run ? "would change " : "changed ") + addr.str() + ": flags " +
             (flags.empty() ? "none" : flags) + ", quota " + u.quota + (a.inactive ? ", inactive" : ""));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vmoduser");
    Args a;
    CLI::App app{"Change a mailbox's restriction flags (kept in pw_gid), its comment or its quota.", "vmoduser"};
    app.set_help_flag("--help", "Print this help message and exit");
    app.set_version_flag("--version", QV_VERSION);
    app.add_option("ADDRESS", a.address, "The mailbox: user@domain")->required();
    for (auto& f : user_flags()) {
        a.letters[f.letter] = false;
        app.add_flag(std::string("-") + f.letter, a.letters[f.letter],
                     "Set " + std::string(f.name) + ": " + std::string(f.text));
    }
    app.add_flag("-t,--toggle", a.toggle, "Toggle the flags given by letter instead of setting them");
    app.add_flag("-x,--clear-all", a.clear_all, "Clear every flag (before applying the others)");
    app.add_option("--set", a.set, "Set a flag by name (repeatable): no-pop, no-imap, no-smtp, no-relay, ...")
        ->type_name("FLAG");
    app.add_option("--clear", a.clear, "Clear a flag by name (repeatable)")->type_name("FLAG");
    app.add_option("-c,--comment", a.gecos, "New comment (gecos)")->type_name("TEXT");
    app.add_option("-q,--quota", a.quota, "New quota: NOQUOTA, bytes (k/m/g), or size,count")->type_name("QUOTA");
    auto* active = app.add_flag("--active", a.active,
                                "Make an inactive mailbox active again (IndiMail's -n; here -n is --dry-run)");
    app.add_flag("--inactive", a.inactive,
                 "Make the mailbox inactive: it keeps its mail, but its mail bounces and its logins are refused")
        ->excludes(active);
    app.add_option("-H,--host", a.host,
                   "Move the mailbox to this host sharing the database (run on the host that holds it): its home "
                   "is copied there with rsync, then its host changes, then the old copy is removed")
        ->type_name("HOST");
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "Exit status: 0 changed; 9 --active/--inactive: the mailbox is in both sets; 64 usage; 65 bad address,\n"
        "comment or quota, or --host on a host that does not hold the mailbox; 66 --host: its Maildir is not\n"
        "here; 67 no such mailbox (--active: no such inactive mailbox); 68 no such domain or host; 69 the\n"
        "database is down; 73/74/77 files cannot be written or copied; 75 another command holds the lock, or\n"
        "the database rolled the change back; 78 --host: the host says nowhere how its homes are reached.\n"
        "See vmoduser(8).");
    app.callback([&] { prog.action = [&] { return run(prog, a); }; });
    prog.positional_completions[&app] = complete_addresses;
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vmoduser
