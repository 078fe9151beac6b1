// qmailctl init - lay out a mail host: system accounts, QMAILHOME, control files with defaults, the SMTP
// access rules, the queue and the services' variables. Idempotent; never rewrites an edited file.
#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <cerrno>
#include <optional>

#include "qmailctl.hpp"
#include "qvmail/error.hpp"
#include "qvmail/host_init.hpp"
#include "qvmail/paths.hpp"

namespace qv::qmailctl {

namespace {

struct InitArgs {
    std::optional<std::string> hostname;
};

int run_init(const Program& prog, const InitArgs& a) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    HostInitOptions opts;
    if (a.hostname) opts.hostname = normalize_hostname(*a.hostname);  // bad input changes nothing
    opts.dry_run = prog.common.dry_run;
    // the admin lock lives in QMAILHOME: it is made first (the report says so)
    bool made_home = false;
    if (!opts.dry_run && !path_exists(paths.qmailhome)) {
        if (::mkdir(paths.qmailhome.c_str(), 0755) != 0 && errno != EEXIST)
            throw sys_error(exit_for_create_errno(errno), "cannot create", paths.qmailhome, errno);
        // 0755 whatever the umask: the services' users must reach control/ and run/
        if (::chmod(paths.qmailhome.c_str(), 0755) != 0)
            throw sys_error(exit_for_create_errno(errno), "cannot set the mode of", paths.qmailhome, errno);
        made_home = true;
    }
    auto lock = lock_for_change(paths, prog.common);
    HostInitReport r = init_host(paths, opts);
    if (made_home) r.steps.insert(r.steps.begin(), "create directory " + paths.qmailhome.string());
    for (const auto& w : r.warnings) rep.warning(w);

    Json kept = Json::array();
    for (const auto& k : r.kept) kept.push(k);
    Json extra = Json::object();
    extra.set("qmailhome", paths.qmailhome.string()).set("hostname", r.hostname).set("kept", std::move(kept));
    if (r.steps.empty()) {
        if (rep.json()) {
            rep.object(extra.set("status", "unchanged"));
        } else if (!prog.common.quiet) {
            rep.line("the mail host " + r.hostname + " in " + paths.qmailhome.string() + " is complete: nothing to do");
            for (const auto& k : r.kept) rep.line("  kept as it is: " + k + " (differs from the default)");
        }
        return 0;
    }
    int rc = report_change(prog,
                           "laid out the mail host " + r.hostname + " in " + paths.qmailhome.string() + " (" +
                               std::to_string(r.steps.size()) + " steps)",
                           r.steps, std::move(extra));
    if (!rep.json() && !prog.common.quiet)
        for (const auto& k : r.kept) rep.line("  kept as it is: " + k + " (differs from the default)");
    return rc;
}

}  // namespace

void setup_init(CLI::App& app, Program& prog) {
    static InitArgs args;
    CLI::App* init = app.add_subcommand(
        "init",
        "Lay out a mail host: system users and groups, QMAILHOME, control files with defaults, tcp.smtp (compiled), "
        "the queue and the services' variables (idempotent; an edited file is never rewritten)");
    init->add_option("--hostname", args.hostname,
                     "The host's name for control/me (default: this machine's fully qualified name)")
        ->type_name("NAME");
    add_common_options(*init, prog.common, opt_json | opt_dry_run | opt_quiet | opt_verbose | opt_lock_wait);
    init->callback([&prog] { prog.action = [&prog] { return run_init(prog, args); }; });
    set_footers(init,
                "Exit status: 0 done or nothing to do; 64 usage; 65 --hostname is not a domain name;\n"
                "73 something cannot be created (or useradd/groupadd failed); 74 I/O error; 75 locked;\n"
                "77 permission denied. See qmailctl(8).");
}

}  // namespace qv::qmailctl
