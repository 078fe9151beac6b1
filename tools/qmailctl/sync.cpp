// qmailctl sync - lay out on this host the domains the database has (hosts sharing one MariaDB or Galera
// cluster). See qmailctl(8), SHARED DOMAINS.
#include <CLI/CLI.hpp>

#include "qmailctl.hpp"
#include "qvmail/domain_sync.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv::qmailctl {

namespace {

int run_sync(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    auto lock = lock_for_change(paths, prog.common);
    auto store = open_store(paths, prog.mysql);
    if (!store->shares_domains()) {
        rep.warning("the " + std::string(store->backend()) +
                    " store keeps this host's domains in its own files: nothing to sync");
        return 0;
    }
    const bool dry = prog.common.dry_run;
    SyncResult r = sync_domains(paths, *store, dry);
    for (auto& c : r.changes) {
        if (!dry) audit(prog.name, c.action + " " + c.domain + (c.detail.empty() ? "" : " (" + c.detail + ")"));
        if (rep.json()) {
            Json j = Json::object().set("action", c.action).set("domain", c.domain);
            if (!c.detail.empty()) j.set("detail", c.detail);
            j.set("status", dry ? "dry-run" : "done");
            if (rep.show_steps()) j.set("steps", c.steps);
            rep.object(j);
            continue;
        }
        rep.steps(c.steps);
        rep.line(std::string(dry ? "would " : "") + c.action + " " + c.domain +
                 (c.detail.empty() ? "" : " (" + c.detail + ")"));
    }
    for (auto& p : r.problems) rep.error(p, r.exit_code ? r.exit_code : 1);
    if (r.changes.empty() && r.problems.empty() && !rep.json()) rep.info("in step with the database");
    if (r.exit_code) return r.exit_code;
    return r.problems.empty() ? 0 : 1;
}

}  // namespace

void setup_sync(CLI::App& app, Program& prog) {
    CLI::App* sub = app.add_subcommand(
        "sync", "Lay out on this host the domains the shared database has, and take away those it no longer has");
    add_common_options(*sub, prog.common, opt_json | opt_dry_run | opt_quiet_short | opt_verbose | opt_lock_wait);
    add_mysql_options(*sub, prog);
    sub->footer(
        "Run by qvmail-sync.timer (or cron) every minute and before qmail-send starts.\n"
        "Exit status: 0 in step (or brought in step); 1 something sync leaves to the administrator (a domain\n"
        "the database lacks, an owner that differs); 65 a row that names no domain, or a handler, hash method or\n"
        "base path vadddomain would refuse (not laid out); 69 the database cannot be reached; 73/74/77\n"
        "files cannot be written (the code of the first domain that failed; the others were synced); 75 another\n"
        "command holds the lock; 78 control/clusteraddress is not an address. See qmailctl(8).");
    sub->callback([&prog] { prog.action = [&prog] { return run_sync(prog); }; });
}

}  // namespace qv::qmailctl
