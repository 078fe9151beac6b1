// What every command shares: common options, the run loop that turns errors into one-line messages
// and sysexits codes, NDJSON output, the audit line to syslog, and shell completion.
//
// Including this header does not pull in CLI11; the command files include it themselves. JSON output
// goes through qv::Json, so no command compiles nlohmann/json.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/json.hpp"
#include "qvmail/lock.hpp"
#include "qvmail/mysql.hpp"
#include "qvmail/password.hpp"
#include "qvmail/progress.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace qv {

class Error;
class FileLock;
struct Paths;

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
    opt_quiet = 1u << 3,  // --quiet
    opt_verbose = 1u << 4,
    opt_lock_wait = 1u << 5,
    opt_quiet_short = 1u << 6,  // -q too (IndiMail's commands use -q for the quota)
};

void add_common_options(CLI::App& app, CommonOptions& opts, unsigned which);
struct Program;
// --mysql-defaults-file FILE and --mysql-group GROUP, for every command that uses the store.
void add_mysql_options(CLI::App& app, Program& prog);

// Output of one command run: results on stdout (human lines or one JSON object per line),
// diagnostics on stderr prefixed with the program name (JSON objects with --json).
class Reporter {
public:
    Reporter(std::string program, const CommonOptions& opts) : program_(std::move(program)), opts_(opts) {}

    bool json() const noexcept { return opts_.json; }
    const CommonOptions& options() const noexcept { return opts_; }
    const std::string& program() const noexcept { return program_; }

    void line(std::string_view text) const;  // a human result line
    // The steps of a change, shown with -v and with --dry-run (as "would ...").
    bool show_steps() const noexcept { return opts_.verbose > 0 || opts_.dry_run; }
    void steps(const std::vector<std::string>& steps) const;
    void object(const Json& j) const;           // one NDJSON result line
    void info(std::string_view text) const;     // stderr, shown with -v only
    void warning(std::string_view text) const;  // stderr, hidden by -q
    void error(const Error& e, const Json* extra = nullptr) const;
    void error(std::string_view message, int code) const;

private:
    std::string program_;
    const CommonOptions& opts_;
};

// One command-line program. Subcommands (or the program itself) set `action` from their parse
// callback; `run` calls it after a successful parse.
struct Program {
    explicit Program(std::string program_name) : name(std::move(program_name)) {}
    std::string name;
    CommonOptions common;
    std::function<int()> action;
    // Candidates for positional arguments, per (sub)command, for shell completion.
    MysqlOverrides mysql;  // --mysql-defaults-file, --mysql-group
    // The hook gets the word being completed.
    std::map<const CLI::App*, std::function<std::vector<std::string>(const std::string&)>> positional_completions;
    // Candidates for the values of options (a header name, a comparison), likewise.
    std::map<const CLI::Option*, std::function<std::vector<std::string>(const std::string&)>> value_completions;
};

// Parses argv with `app` and runs the chosen action. Handles --help and --version, the hidden
// `__complete` mode used by the shell completions, CLI11 errors (exit 64, one line), qv::Error
// (its own code) and anything else (exit 70). Returns the exit code.
int run(CLI::App& app, Program& prog, int argc, char** argv);

// Completion candidates for the words typed after the program name (the last one is the word being
// completed, possibly empty).
std::vector<std::string> complete(const CLI::App& app, const Program& prog, const std::vector<std::string>& words);

// The admin lock for a change, held until the returned object goes; none for a dry run.
std::optional<FileLock> lock_for_change(const Paths& paths, const CommonOptions& opts);

// How a command gets a password: at most one of a positional argument (accepted with a warning),
// --password-stdin, --password-file, -r LEN (random); else a prompt on a terminal.
struct PasswordOptions {
    std::optional<std::string> positional;
    bool from_stdin = false;
    std::optional<std::string> file;
    std::size_t random_length = 0;
    bool prehashed = false;                  // -e: the value is already a crypt(3) hash
    std::optional<std::string> hash_method;  // -h
    bool cram = false;                       // -C: keep the clear text too, for CRAM-MD5
};
void add_password_options(CLI::App& app, PasswordOptions& o);

struct ObtainedPassword {
    std::string hash;
    std::optional<std::string> generated;  // the clear text of a random password, to show once
    std::string scram;                     // with -C: "{CRAM}<clear text>" for the scram field
};
// Throws Error 64 (no or several sources), 65 (bad password or hash), 66 (unreadable file).
ObtainedPassword obtain_password(const PasswordOptions& o, const Reporter& rep, std::string_view for_whom,
                                 HashMethod default_method);

// A progress line on the terminal (standard error) for work that may take more than a few seconds:
// drawn only when standard error is a terminal, never with --json or --quiet, not before the work has
// run for a second (QV_PROGRESS_DELAY milliseconds), and at most five times a second; erased when the
// work is done (or by clear(), before a result line is printed).
class Progress {
public:
    Progress(const Reporter& rep, std::string what);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;
    void update(std::uint64_t done, std::uint64_t total = 0);  // "what: done of total (pct%)"
    void clear();                                               // erase the line now (it comes back)
    ProgressFn callback() { return [this](std::uint64_t d, std::uint64_t t) { update(d, t); }; }

private:
    std::string what_;
    bool enabled_ = false, drawn_ = false;
    std::int64_t start_ms_ = 0, last_ms_ = 0, delay_ms_ = 1000;
};

// Asks `question` on the terminal; true for y or yes. False when there is no terminal.
bool confirm(const std::string& question);
bool on_terminal();

// Options a command keeps for compatibility but refuses with a clear message (exit 64).
class Unsupported {
public:
    // `names`: CLI11 option names, e.g. "-D"; `takes_value`: whether it has an argument.
    void add(CLI::App& app, const std::string& names, bool takes_value, std::string why);
    void check() const;  // throws Error 64 for the first one given

private:
    struct Entry {
        std::string name;
        std::string why;
        std::shared_ptr<bool> flag;
        std::shared_ptr<std::string> value;
    };
    std::vector<Entry> entries_;
};

// One audit line to syslog (facility mail) for a change: who ran the command and what changed.
void audit(std::string_view program, std::string_view what);

// Completion hooks shared by the domain and mailbox commands.
std::vector<std::string> complete_domain_names(const std::string& prefix);

// A time for people: "2026-12-03 16:20:21", local time.
std::string local_time_text(std::int64_t unix_seconds);
std::vector<std::string> complete_addresses(const std::string& prefix);
std::vector<std::string> complete_aliases(const std::string& prefix);  // alias@domain, and domain names

}  // namespace qv
