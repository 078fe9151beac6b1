// clearopensmtp - expire POP/IMAP-before-SMTP relay grants and rebuild tcp.smtp.cdb. See clearopensmtp(8).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "../commands.hpp"

#include "qvmail/cli.hpp"
#include "qvmail/error.hpp"
#include "qvmail/lock.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/relay.hpp"
#include "qvmail/store.hpp"

namespace qv::cmd_clearopensmtp {

namespace {

struct Args {
    bool rebuild_only = false;  // -t
    bool purge_only = false;    // -s
    std::optional<unsigned> minutes;
    std::uint64_t batch = 2000;
};

int run(const Program& prog, const Args& a) {
    Reporter rep(prog.name, prog.common);
    auto started = std::chrono::steady_clock::now();
    Paths paths = Paths::from_env();
    ClearOptions opts;
    // No option, or both: purge and rebuild (as IndiMail's clearopensmtp).
    opts.purge = !a.rebuild_only || a.purge_only;
    opts.rebuild = !a.purge_only || a.rebuild_only;
    opts.minutes = a.minutes.value_or(paths.relay_clear_minutes);
    opts.batch = a.batch;
    opts.dry_run = prog.common.dry_run;

    // One instance at a time, at once: a cron run that finds the previous one still busy gives way.
    std::optional<FileLock> running;
    try {
        running.emplace(paths.qmailhome / ".clearopensmtp.lock", std::chrono::milliseconds(0));
    } catch (const Error& e) {
        if (e.code() != Exit::tempfail) throw;
        throw Error(Exit::tempfail, "another clearopensmtp is running (it holds " +
                                        (paths.qmailhome / ".clearopensmtp.lock").string() + "); not started");
    }

    std::unique_ptr<Store> store;
    if (opts.purge) store = open_store(paths, prog.mysql);  // 69 here, before any file is touched
    // The grants and tcp.smtp.cdb are shared with qmailctl relay and vchkpass: the admin lock is held
    // for the whole run (on MariaDB, so that a lock that cannot be had changes nothing either).
    auto lock = lock_for_change(paths, prog.common);
    Progress progress(rep, "clearopensmtp: relay grants removed");
    opts.progress = progress.callback();
    ClearResult r = clear_open_smtp(paths, store.get(), opts, std::time(nullptr));
    progress.clear();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    if (!opts.dry_run && (r.deleted || r.rebuilt))
        audit(prog.name, "removed " + std::to_string(r.deleted) + " expired relay grant(s)" +
                             (r.rebuilt ? ", rebuilt " + paths.tcp_file.string() + ".cdb" : ""));
    if (rep.json()) {
        Json j = Json::object();
        j.set("status", opts.dry_run ? "dry-run" : "done")
            .set("purged", opts.purge)
            .set("deleted", r.deleted)
            .set("kept", r.kept)
            .set("batches", r.batches)
            .set("minutes", opts.minutes)
            .set("rules_rebuilt", r.rebuilt)
            .set("store", store ? Json(store->grants_source()) : Json())
            .set("milliseconds", static_cast<std::int64_t>(seconds * 1000));
        if (rep.show_steps()) j.set("steps", r.steps);
        rep.object(j);
        return 0;
    }
    rep.steps(r.steps);
    if (prog.common.quiet) return 0;
    char dur[32];
    std::snprintf(dur, sizeof dur, "%.3f s", seconds);
    std::string line;
    if (opts.purge)
        line = (opts.dry_run ? "would delete " : "deleted ") + std::to_string(r.deleted) + " grant(s) older than " +
               std::to_string(opts.minutes) + " min, kept " + std::to_string(r.kept) + "; ";
    if (opts.rebuild)
        line += r.rebuilt ? (opts.dry_run ? "would rebuild " : "rebuilt ") + paths.tcp_file.filename().string() + ".cdb"
                          : "no rules to rebuild";
    else
        line += "rules not rebuilt (-s)";
    rep.line(line + " in " + dur);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Program prog("clearopensmtp");
    Args a;
    CLI::App app{"Expire POP/IMAP-before-SMTP relay grants older than RELAY_CLEAR_MINUTES and rebuild tcp.smtp.cdb.",
                 "clearopensmtp"};
    app.set_version_flag("--version", QV_VERSION);
    app.add_flag("-t,--rebuild-only", a.rebuild_only, "Only rebuild tcp.smtp.cdb (with the files store's grants)");
    app.add_flag("-s,--purge-only", a.purge_only, "Only delete the expired grants");
    app.add_option("--minutes", a.minutes, "How old a grant may get, in minutes (default: RELAY_CLEAR_MINUTES or 60)")
        ->check(CLI::Range(1u, 525600u));
    app.add_option("--batch", a.batch, "Rows per DELETE on MariaDB, so lookups never wait long (default 2000)")
        ->check(CLI::Range(1, 1000000));
    add_common_options(app, prog.common, opt_json | opt_dry_run | opt_quiet_short | opt_verbose | opt_lock_wait);
    add_mysql_options(app, prog);
    app.footer(
        "Run from cron at 5 and 35 minutes past the hour. Exit status: 0 done; 64 usage; 65 a bad line in\n"
        "tcp.smtp or open-smtp (the old cdb is kept); 69 the database cannot be reached (no file is touched);\n"
        "73/74 tcp.smtp.cdb cannot be written; 75 another clearopensmtp is running, or the admin lock is\n"
        "held; 78 configuration error. See clearopensmtp(8).");
    app.callback([&] { prog.action = [&] { return run(prog, a); }; });
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_clearopensmtp
