// qmailctl: one file per subcommand; each registers itself on the app and sets the program action.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qvmail/cli.hpp"
#include "qvmail/text.hpp"  // age_text

namespace qv::qmailctl {

void setup_cdb(CLI::App& app, Program& prog);
void setup_check(CLI::App& app, Program& prog);
void setup_db(CLI::App& app, Program& prog);
void setup_relay(CLI::App& app, Program& prog);
void setup_outgoingip(CLI::App& app, Program& prog);
void setup_bounce(CLI::App& app, Program& prog);
void setup_queue(CLI::App& app, Program& prog);
void setup_init(CLI::App& app, Program& prog);
void setup_status(CLI::App& app, Program& prog);
void setup_sync(CLI::App& app, Program& prog);

// Reports a change: the steps with -v or --dry-run, a result line or object (`extra` with status and
// change), and an audit line. Returns 0.
int report_change(const Program& prog, const std::string& what, const std::vector<std::string>& steps, Json extra);

// Gives a subcommand and all the subcommands below it the footer (the exit codes that apply to them).
void set_footers(CLI::App* app, const std::string& footer);

}  // namespace qv::qmailctl
