// Running a delivery program as qmail's spawners run theirs: the message on descriptor 0, what it
// writes on 1 and 2 collected, its exit status judged by the caller. Safe to call from several threads
// at once (everything the child needs is prepared before fork; the child only calls async-signal-safe
// functions), so qmail-send's delivery threads can each run one.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qvmail/atomic_file.hpp"
#include "qvmail/error.hpp"

namespace qv {

struct ProgramRun {
    std::vector<std::string> argv;  // argv[0] is the path of the program run
    std::vector<std::string> env;   // the whole environment, NAME=value
    int stdin_fd = -1;              // becomes descriptor 0 (the child shares its offset); -1: /dev/null
    std::optional<Owner> as;        // the user and group to run as (only when running as root)
    std::filesystem::path cwd;      // where it runs (empty: here)
    int timeout = 0;                // seconds; killed (SIGKILL) after that; 0: never
    std::size_t max_output = 64 * 1024;  // what it writes beyond this is read and dropped
};

struct ProgramResult {
    int status = 0;  // as waitpid(2) gives it
    std::string output;
    bool timed_out = false;
    bool exited() const noexcept;
    int exit_code() const noexcept;  // -1 when it did not exit (killed by a signal)
};

// Runs it and waits. Throws Error 75 (a temporary failure) when it cannot be started
// (fork or pipe failed); a program that cannot be executed exits 111 with the reason on its output.
ProgramResult run_program(const ProgramRun& run);

// A program's path: on PATH, else in the system directories (root's PATH may lack them under sudo);
// nullopt when it is nowhere.
std::optional<std::string> find_program(const std::string& name);

// Runs an administrative command (argv[0] looked up with find_program) with this environment and waits.
// Throws Error `failure` naming the command, its exit status and what it printed when it fails, and when
// it cannot be found ("cannot find NAME " + why_needed). timeout: seconds, 0 for none.
void run_command(const std::vector<std::string>& argv, Exit failure, const std::string& why_needed, int timeout = 0);

// This process's environment with `changes` made (nullopt: unset), as NAME=value strings.
std::vector<std::string> environment_with(const std::map<std::string, std::optional<std::string>>& changes);

}  // namespace qv
