// What every command shares: common options, the run loop that turns errors into one-line messages
// and sysexits codes, NDJSON output, the audit line to syslog, and shell completion.
//
// Including this header does not pull in CLI11 or nlohmann/json; the command files that need them
// include them themselves.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace qv {

class Error;

struct CommonOptions {
    bool json = false;
    bool dry_run = false;
    bool yes = false;
    bool quiet = false;
    int verbose = 0;
    unsigned lock_wait = 30;  // seconds to wait for the admin lock
};

enum CommonOption : unsigned {
    opt_json = 1u << 0,
    opt_dry_run = 1u << 1,
    opt_yes = 1u << 2,
    opt_quiet = 1u << 3,
    opt_verbose = 1u << 4,
    opt_lock_wait = 1u << 5,
};

void add_common_options(CLI::App& app, CommonOptions& opts, unsigned which);

// Output of one command run: results on stdout (human lines or one JSON object per line),
// diagnostics on stderr prefixed with the program name (JSON objects with --json).
class Reporter {
public:
    Reporter(std::string program, const CommonOptions& opts) : program_(std::move(program)), opts_(opts) {}

    bool json() const noexcept { return opts_.json; }
    const CommonOptions& options() const noexcept { return opts_; }
    const std::string& program() const noexcept { return program_; }

    void line(std::string_view text) const;               // a human result line
    void object(const nlohmann::ordered_json& j) const;  // one NDJSON result line
    void info(std::string_view text) const;               // stderr, shown with -v only
    void warning(std::string_view text) const;            // stderr, hidden by -q
    void error(const Error& e, const nlohmann::ordered_json* extra = nullptr) const;
    void error(std::string_view message, int code) const;

private:
    std::string program_;
    const CommonOptions& opts_;
};

// One command-line program. Subcommands (or the program itself) set `action` from their parse
// callback; `run` calls it after a successful parse.
struct Program {
    std::string name;
    CommonOptions common;
    std::function<int()> action;
    // Candidates for positional arguments, per (sub)command, for shell completion.
    std::map<const CLI::App*, std::function<std::vector<std::string>()>> positional_completions;
};

// Parses argv with `app` and runs the chosen action. Handles --help and --version, the hidden
// `__complete` mode used by the shell completions, CLI11 errors (exit 64, one line), qv::Error
// (its own code) and anything else (exit 70). Returns the exit code.
int run(CLI::App& app, Program& prog, int argc, char** argv);

// Completion candidates for the words typed after the program name (the last one is the word being
// completed, possibly empty).
std::vector<std::string> complete(const CLI::App& app, const Program& prog, const std::vector<std::string>& words);

// One audit line to syslog (facility mail) for a change: who ran the command and what changed.
void audit(std::string_view program, std::string_view what);

// A JSON string from arbitrary bytes (invalid UTF-8 replaced, so output never fails).
std::string json_dump(const nlohmann::ordered_json& j);

}  // namespace qv
