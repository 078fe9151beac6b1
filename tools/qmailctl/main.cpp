// qmailctl - control a qvmail mail host. See qmailctl(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"
#include "qmailctl.hpp"

namespace qv::qmailctl {

int report_change(const Program& prog, const std::string& what, const std::vector<std::string>& steps, Json extra) {
    Reporter rep(prog.name, prog.common);
    bool dry = prog.common.dry_run;
    if (!dry) audit(prog.name, what);
    if (rep.json()) {
        extra.set("status", dry ? "dry-run" : "done").set("change", what);
        if (rep.show_steps()) extra.set("steps", steps);
        rep.object(extra);
        return 0;
    }
    rep.steps(steps);
    if (!dry && !prog.common.quiet) rep.line(what);
    return 0;
}

void set_footers(CLI::App* app, const std::string& footer) {
    app->footer(footer);
    for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) set_footers(sub, footer);
}

}  // namespace qv::qmailctl

namespace qv::cmd_qmailctl {

int main(int argc, char** argv) {
    Program prog("qmailctl");
    CLI::App app{
        "Control a qvmail mail host: lay it out, compile its databases, check its configuration, relaying, outgoing addresses, "
        "bounces and the queue, and show its state.",
        "qmailctl"};
    app.set_version_flag("--version", QV_VERSION);
    app.require_subcommand(0, 1);
    app.footer(
        "Exit status: 0 success; 64 usage; 65 bad data; 66 missing input; 73 cannot create;\n"
        "74 I/O error; 75 locked, try again; 78 configuration error. See qmailctl(8).");
    qv::qmailctl::setup_init(app, prog);
    qv::qmailctl::setup_cdb(app, prog);
    qv::qmailctl::setup_check(app, prog);
    qv::qmailctl::setup_db(app, prog);
    qv::qmailctl::setup_relay(app, prog);
    qv::qmailctl::setup_outgoingip(app, prog);
    qv::qmailctl::setup_bounce(app, prog);
    qv::qmailctl::setup_queue(app, prog);
    qv::qmailctl::setup_status(app, prog);
    qv::qmailctl::setup_sync(app, prog);
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_qmailctl
