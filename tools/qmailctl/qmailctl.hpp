// qmailctl: one file per subcommand; each registers itself on the app and sets the program action.
#pragma once

#include "qvmail/cli.hpp"

namespace qv::qmailctl {

void setup_cdb(CLI::App& app, Program& prog);
void setup_check(CLI::App& app, Program& prog);
void setup_db(CLI::App& app, Program& prog);
void setup_relay(CLI::App& app, Program& prog);

}  // namespace qv::qmailctl
