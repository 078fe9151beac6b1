// qmailctl check - read-only consistency report of the mail host.
#include <CLI/CLI.hpp>

#include "qmailctl.hpp"
#include "qvmail/check.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv::qmailctl {

namespace fs = std::filesystem;

namespace {

int run_check(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    Paths paths = Paths::from_env();
    std::error_code ec;
    if (!fs::is_directory(paths.qmailhome, ec))
        throw Error(Exit::config, "QMAILHOME " + paths.qmailhome.string() + " is not a directory (set QMAILHOME)");
    auto store = open_store(paths, prog.mysql);
    Progress progress(rep, "qmailctl check: domains");
    CheckSummary s = check_host(paths, *store, progress.callback());
    progress.clear();
    std::size_t problems = 0, warnings = 0;
    for (auto& f : s.findings) {
        (f.severity == Finding::problem ? problems : warnings)++;
        if (rep.json()) {
            rep.object(Json::object()
                           .set("severity", f.severity == Finding::problem ? "problem" : "warning")
                           .set("domain", f.domain)
                           .set("check", f.check)
                           .set("message", f.message));
        } else if (f.severity == Finding::problem || !prog.common.quiet) {
            rep.line(std::string(f.severity == Finding::problem ? "problem" : "warning") + ": " +
                     (f.domain.empty() ? "" : f.domain + ": ") + f.message);
        }
    }
    if (rep.json()) {
        rep.object(Json::object()
                       .set("summary", problems ? "inconsistent" : "consistent")
                       .set("qmailhome", paths.qmailhome.string())
                       .set("store", std::string(store->backend()))
                       .set("domains", s.domains)
                       .set("mailboxes", s.mailboxes)
                       .set("problems", problems)
                       .set("warnings", warnings));
    } else {
        rep.line(paths.qmailhome.string() + ": " + std::to_string(s.domains) + " domains, " +
                 std::to_string(s.mailboxes) + " mailboxes, " + std::string(store->backend()) + " store; " +
                 std::to_string(problems) + " problems, " + std::to_string(warnings) + " warnings");
    }
    return problems ? 1 : 0;
}

}  // namespace

void setup_check(CLI::App& app, Program& prog) {
    CLI::App* sub = app.add_subcommand("check",
                                       "Report inconsistencies between users/assign, the control files, "
                                       "the domain directories, the store and the cdbs (read-only)");
    add_common_options(*sub, prog.common, opt_json | opt_quiet | opt_quiet_short);
    add_mysql_options(*sub, prog);
    sub->footer(
        "Exit status: 0 consistent; 1 problems found; 64 usage; 69 store unavailable; 78 QMAILHOME\n"
        "missing. See qmailctl(8).");
    sub->callback([&prog] { prog.action = [&prog] { return run_check(prog); }; });
}

}  // namespace qv::qmailctl
