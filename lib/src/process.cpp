// Running a delivery program. See process.hpp.
#include "qvmail/process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "qvmail/error.hpp"

extern char** environ;

namespace qv {

bool ProgramResult::exited() const noexcept {
    return WIFEXITED(status);
}

int ProgramResult::exit_code() const noexcept {
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

namespace {

std::vector<char*> pointers(const std::vector<std::string>& v) {
    std::vector<char*> p;
    p.reserve(v.size() + 1);
    for (const auto& s : v) p.push_back(const_cast<char*>(s.c_str()));
    p.push_back(nullptr);
    return p;
}

// In the child: writes a message without allocating, then exits 111.
[[noreturn]] void child_fail(const char* what, int err) {
    const char* why = ::strerror(err);  // not async-signal-safe in theory; glibc's returns static text
    [[maybe_unused]] ssize_t n = ::write(1, what, std::strlen(what));
    n = ::write(1, ": ", 2);
    n = ::write(1, why, std::strlen(why));
    n = ::write(1, ". (#4.3.0)\n", 11);
    ::_exit(111);
}

}  // namespace

ProgramResult run_program(const ProgramRun& run) {
    if (run.argv.empty()) throw Error(Exit::software, "run_program: no program");
    auto argv = pointers(run.argv);
    auto envp = pointers(run.env);
    const bool root = ::geteuid() == 0;
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw Error(Exit::tempfail, std::string("cannot make a pipe: ") + std::strerror(errno));
    const std::string cwd = run.cwd.string();
    pid_t pid = ::fork();
    if (pid < 0) {
        int e = errno;
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        throw Error(Exit::tempfail, std::string("cannot fork: ") + std::strerror(e));
    }
    if (pid == 0) {
        // the child: descriptors 0, 1, 2, then who and where, then exec
        int in = run.stdin_fd >= 0 ? run.stdin_fd : ::open("/dev/null", O_RDONLY);
        if (in < 0 || ::dup2(in, 0) < 0) child_fail("cannot set up the input", errno);
        if (::dup2(pipefd[1], 1) < 0 || ::dup2(pipefd[1], 2) < 0) ::_exit(111);
        ::close_range(3, ~0U, 0);
        ::setpgid(0, 0);  // a group of its own: a timeout kills whatever it started too
        ::signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (run.as && root) {
            gid_t g = run.as->gid;
            if (::setgroups(1, &g) != 0 || ::setgid(run.as->gid) != 0 || ::setuid(run.as->uid) != 0)
                child_fail("cannot change to the delivery user", errno);
        }
        if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) child_fail("cannot change to the delivery directory", errno);
        ::execve(argv[0], argv.data(), envp.data());
        child_fail("cannot run the delivery program", errno);
    }
    ::close(pipefd[1]);
    ProgramResult r;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(run.timeout);
    char buf[8192];
    for (;;) {
        int wait_ms = -1;
        if (run.timeout > 0) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                r.timed_out = true;
                ::kill(-pid, SIGKILL);
                ::kill(pid, SIGKILL);
                break;
            }
            wait_ms = static_cast<int>(std::min<long long>(left.count(), 60000));
        }
        pollfd p{pipefd[0], POLLIN, 0};
        int n = ::poll(&p, 1, wait_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) continue;
        ssize_t got = ::read(pipefd[0], buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        std::size_t room = run.max_output > r.output.size() ? run.max_output - r.output.size() : 0;
        r.output.append(buf, std::min(room, static_cast<std::size_t>(got)));
    }
    ::close(pipefd[0]);
    while (::waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
    }
    return r;
}

std::vector<std::string> environment_with(const std::map<std::string, std::optional<std::string>>& changes) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv(*e);
        auto eq = kv.find('=');
        std::string name(kv.substr(0, eq));
        if (changes.count(name)) continue;
        env.emplace_back(kv);
    }
    for (const auto& [name, value] : changes)
        if (value) env.push_back(name + "=" + *value);
    return env;
}

std::optional<std::string> find_program(const std::string& name) {
    std::string dirs = std::getenv("PATH") ? std::getenv("PATH") : "";
    dirs += ":/usr/sbin:/sbin:/usr/bin:/bin";
    std::size_t at = 0;
    while (at <= dirs.size()) {
        std::size_t colon = dirs.find(':', at);
        std::string dir = dirs.substr(at, colon == std::string::npos ? std::string::npos : colon - at);
        if (!dir.empty()) {
            std::filesystem::path p = std::filesystem::path(dir) / name;
            if (::access(p.c_str(), X_OK) == 0) return p.string();
        }
        if (colon == std::string::npos) break;
        at = colon + 1;
    }
    return std::nullopt;
}

void run_command(const std::vector<std::string>& argv, Exit failure, const std::string& why_needed, int timeout) {
    ProgramRun run;
    run.argv = argv;
    auto path = find_program(argv.at(0));
    if (!path) throw Error(failure, "cannot find " + argv[0] + " " + why_needed);
    run.argv[0] = *path;
    run.env = environment_with({});
    run.timeout = timeout;
    ProgramResult r = run_program(run);
    if (!r.exited() || r.exit_code() != 0) {
        std::string out = r.output;
        while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
        std::string cmd;
        for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
        throw Error(failure, cmd + " failed (" +
                                 (r.exited() ? "exit " + std::to_string(r.exit_code()) : std::string("killed")) +
                                 (out.empty() ? ")" : "): " + out));
    }
}

}  // namespace qv
