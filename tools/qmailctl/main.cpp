// qmailctl - control a qvmail mail host. See qmailctl(8).
#include <CLI/CLI.hpp>

#include "../commands.hpp"
#include "qmailctl.hpp"

namespace qv::cmd_qmailctl {

int main(int argc, char** argv) {
    Program prog("qmailctl");
    CLI::App app{"Control a qvmail mail host: compile its databases and check its configuration.", "qmailctl"};
    app.set_version_flag("--version", QV_VERSION);
    app.require_subcommand(0, 1);
    app.footer(
        "Exit status: 0 success; 64 usage; 65 bad data; 66 missing input; 73 cannot create;\n"
        "74 I/O error; 75 locked, try again; 78 configuration error. See qmailctl(8).");
    qv::qmailctl::setup_cdb(app, prog);
    qv::qmailctl::setup_check(app, prog);
    qv::qmailctl::setup_db(app, prog);
    qv::qmailctl::setup_relay(app, prog);
    return qv::run(app, prog, argc, argv);
}

}  // namespace qv::cmd_qmailctl
