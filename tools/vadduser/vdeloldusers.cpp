// vdeloldusers - make idle mailboxes inactive, and remove those left inactive. See vdeloldusers(8).
#include <CLI/CLI.hpp>

#include <ctime>

#include "../commands.hpp"

#include "qvmail/address.hpp"
#include "qvmail/cli.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/inactive.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

namespace qv::cmd_vdeloldusers {

namespace {

struct Args {
    std::vector<std::string> domains;
    std::int64_t days = 60;  // IndiMail's default
    bool purge = false;
    bool report = false;  // IndiMail's -r: report only
};

std::string last_text(const IdleMailbox& m) {
    if (!m.last) return "no login on record";
    std::string what = m.last_service == "add" ? "made" : m.last_service == "maildir" ? "Maildir changed"
                                                                                       : m.last_service + " login";
    return "idle " + std::to_string(m.idle_days) + " days (" + what + " " + local_time_text(*m.last) + ")";
}

int run(const Program& prog, const Args& a) {
    Reporter rep(prog.name, prog.common);
    const bool dry = prog.common.dry_run || a.report;
    if (a.days < 0) throw Error(Exit::usage, "--days " + std::to_string(a.days) + ": expected 0 or more");
    Paths paths = Paths::from_env();
    std::vector<std::string> names;
    for (auto& d : a.domains) names.push_back(normalize_domain(d));
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    std::vector<Domain> domains;
    if (names.empty()) domains = list_domains(paths);
    for (auto& n : names) domains.push_back(require_domain(paths, *store, n));
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    std::uint64_t made_inactive = 0, removed = 0, total = 0;
    for (const Domain& d : domains) {
        IdleScan scan = idle_mailboxes(*store, d, a.days, now);
        total += scan.mailboxes;
        for (const IdleMailbox& m : scan.idle) {
            if (m.inactive && !a.purge) continue;  // already inactive: only --purge goes further
            const Address addr{m.name, d.name};
            const std::string action = m.inactive ? "remove" : "inactivate";
            if (!dry) {
                if (m.inactive) delete_user(paths, *store, addr, false);
                else set_mailbox_active(paths, *store, addr, false, false);
                audit(prog.name, (m.inactive ? "removed inactive mailbox " : "made inactive ") + addr.str() + ": " +
                                     last_text(m));
            }
            (m.inactive ? removed : made_inactive)++;
            if (rep.json()) {
                Json j = Json::object();
                j.set("address", addr.str())
                    .set("action", action)
                    .set("status", dry ? "would-" + action : m.inactive ? "removed" : "inactive")
                    .set("last_activity", m.last ? Json(*m.last) : Json())
                    .set("last_service", m.last ? Json(m.last_service) : Json())
                    .set("idle_days", m.last ? Json(m.idle_days) : Json());
                rep.object(j);
            } else {
                std::string verb = m.inactive ? (dry ? "would remove " : "removed ")
                                              : (dry ? "would make inactive " : "made inactive ");
                rep.line(verb + addr.str() + ": " + last_text(m));
            }
        }
    }
    if (!rep.json())
        rep.info(std::to_string(made_inactive) + (dry ? " would be made inactive, " : " made inactive, ") +
                 std::to_string(removed) + (dry ? " would be removed, of " : " removed, of ") + std::to_string(total) +
                 " mailbox(es)");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("vdeloldusers");
    Args a;
    CLI::App app{"Make mailboxes without a login for more than DAYS whole days inactive (IndiMail's indibak); with\n"
                 "--purge, remove the mailboxes that an earlier run left inactive and that are idle still.",
                 "vdeloldusers"};
    app.set_version_flag("--version", QV_VERSION);
    auto* domain = app.add_option("-d,--domain", a.domains, "Only this domain (repeatable; default: every domain)")
                       ->type_name("DOMAIN");
    prog.value_completions[domain] = complete_domain_names;
    app.add_option("-a,--days", a.days, "Idle for more than this many whole days (default 60)")->type_name("DAYS");
    app.add_flag("-p,--purge", a.purge, "Also remove idle mailboxes that are inactive already, with their mail");
    app.add_flag("-r,--report", a.report, "Only list what would be done (IndiMail's -r; the same as --dry-run)");
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "The last activity is the latest login vchkpass recorded (any service) or the mailbox's creation, else\n"
        "the time of its Maildir/cur. postmaster, abuse and mailer-daemon are never touched. An inactive mailbox\n"
        "keeps its mail; its mail bounces and its logins are refused until vmoduser --active.\n"
        "Exit status: 0 done (also when nothing was idle); 64 usage; 65 a bad domain name; 68 no such domain;\n"
        "69 the database is down; 73/74/77 files cannot be changed; 75 another command holds the lock. See\n"
        "vdeloldusers(8).");
    app.callback([&] { prog.action = [&] { return run(prog, a); }; });
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_vdeloldusers
