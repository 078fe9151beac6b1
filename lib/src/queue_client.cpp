// Handing a message to qmail-queued or to a qmail-queue program. See queue_client.hpp.
#include "qvmail/queue_client.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// qmail-queue run as a program: message on 0, envelope on 1, a custom error on 6.
class ProgramSubmission final : public QueueSubmission {
public:
    ProgramSubmission(fs::path program, const std::vector<std::string>* env) : program_(std::move(program)) {
        std::vector<char*> envp;  // made before fork: the child only calls async-signal-safe functions
        if (env) {
            for (const auto& kv : *env) envp.push_back(const_cast<char*>(kv.c_str()));
            envp.push_back(nullptr);
        }
        int pim[2], pie[2], pierr[2];
        if (::pipe2(pim, O_CLOEXEC) != 0) throw QueueError(qq::cannot_run, "cannot make a pipe");
        if (::pipe2(pie, O_CLOEXEC) != 0) {
            close_all({pim[0], pim[1]});
            throw QueueError(qq::cannot_run, "cannot make a pipe");
        }
        if (::pipe2(pierr, O_CLOEXEC) != 0) {
            close_all({pim[0], pim[1], pie[0], pie[1]});
            throw QueueError(qq::cannot_run, "cannot make a pipe");
        }
        pid_ = ::fork();
        if (pid_ < 0) {
            close_all({pim[0], pim[1], pie[0], pie[1], pierr[0], pierr[1]});
            throw QueueError(qq::cannot_run, std::string("cannot fork: ") + std::strerror(errno));
        }
        if (pid_ == 0) {
            // out of the way of 0, 1 and 6 first, then into place (dup2 leaves close-on-exec off)
            int m = ::fcntl(pim[0], F_DUPFD_CLOEXEC, 10), e = ::fcntl(pie[0], F_DUPFD_CLOEXEC, 10),
                r = ::fcntl(pierr[1], F_DUPFD_CLOEXEC, 10);
            if (m < 0 || e < 0 || r < 0 || ::dup2(m, 0) < 0 || ::dup2(e, 1) < 0 || ::dup2(r, 6) < 0) ::_exit(120);
            // nothing else of the caller's (a database connection, say) goes to the program
            ::close_range(3, 5, 0);
            ::close_range(7, ~0U, 0);
            const char* argv[] = {program_.c_str(), nullptr};
            if (env)
                ::execve(argv[0], const_cast<char* const*>(argv), envp.data());
            else
                ::execv(argv[0], const_cast<char* const*>(argv));
            ::_exit(120);
        }
        close_all({pim[0], pie[0], pierr[1]});
        id_ = static_cast<std::uint64_t>(pid_);
        fdm_ = pim[1];
        fde_ = pie[1];
        fderr_ = pierr[0];
        buf_.reserve(65536);
    }
    ~ProgramSubmission() override {
        if (pid_ > 0) {
            close_all({fdm_, fde_, fderr_});
            int st;
            while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
            }
        }
    }

    void write(std::string_view data) override {
        if (error_ || failed_) return;
        buf_.append(data);
        if (buf_.size() >= 65536) flush();
    }

    std::string close(const Envelope& e) override {
        flush();
        ::close(fdm_);
        fdm_ = -1;
        if (!error_ && !failed_ && !write_all(fde_, format_envelope(e))) error_ = true;
        ::close(fde_);
        fde_ = -1;
        char errstr[1024];
        ssize_t errlen = 0;
        for (;;) {
            ssize_t n = ::read(fderr_, errstr + errlen, sizeof errstr - 1 - static_cast<std::size_t>(errlen));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            errlen += n;
            if (errlen >= static_cast<ssize_t>(sizeof errstr - 1)) break;
        }
        ::close(fderr_);
        fderr_ = -1;
        int st = 0;
        pid_t r;
        while ((r = ::waitpid(pid_, &st, 0)) < 0 && errno == EINTR) {
        }
        pid_t pid = pid_;
        pid_ = -1;
        code_ = qq::bug;
        if (r != pid) return "Zqq waitpid surprise (#4.3.0)";
        if (!WIFEXITED(st)) return "Zqq crashed (#4.3.0)";
        int code = code_ = WEXITSTATUS(st);
        if (code == 0 && (error_ || failed_)) code_ = qq::read_error;
        if (code_ == 0) return "";
        if (code == 0) return std::string(qq::text(code_));
        if (code == qq::custom && errlen > 2 && (errstr[0] == 'D' || errstr[0] == 'Z')) {
            // one line of ASCII: it ends up in an SMTP reply, where a line break would start a new one
            std::string_view s(errstr, static_cast<std::size_t>(errlen));
            return printable(s.substr(0, s.find_first_of(std::string_view("\r\n\0", 3))));
        }
        return std::string(qq::text(code));
    }

    std::uint64_t id() const noexcept override { return id_; }
    std::string via() const override { return program_.string(); }

private:
    static void close_all(std::initializer_list<int> fds) {
        for (int fd : fds)
            if (fd >= 0) ::close(fd);
    }
    void flush() {
        if (!error_ && !buf_.empty() && !write_all(fdm_, buf_)) error_ = true;
        buf_.clear();
    }

    fs::path program_;
    pid_t pid_ = -1;
    std::uint64_t id_ = 0;
    int fdm_ = -1, fde_ = -1, fderr_ = -1;
    std::string buf_;
    bool error_ = false;
};

// qmail-queued, over its socket.
class DaemonSubmission final : public QueueSubmission {
public:
    explicit DaemonSubmission(int fd) : fd_(fd) { buf_.reserve(65536); }
    ~DaemonSubmission() override {
        if (fd_ >= 0) ::close(fd_);
    }

    void write(std::string_view data) override {
        if (error_ || failed_) return;
        while (!data.empty()) {
            std::size_t take = std::min(data.size(), 65536 - buf_.size());
            buf_.append(data.substr(0, take));
            data.remove_prefix(take);
            if (buf_.size() == 65536) flush();
        }
    }

    std::string close(const Envelope& e) override {
        flush();
        if (failed_) {  // closing before the envelope abandons the message
            ::close(fd_);
            fd_ = -1;
            code_ = qq::read_error;
            return std::string(qq::text(code_));
        }
        if (!error_) error_ = !frame(queued::kEnvelope, format_envelope(e));
        char reply[9];
        bool answered = !error_ && queued::read_exact(fd_, reply, sizeof reply);
        ::close(fd_);
        fd_ = -1;
        if (!answered) {
            code_ = qq::write_error;
            return "Zqmail-queued went away before it answered (#4.3.0)";
        }
        int code = code_ = static_cast<unsigned char>(reply[0]);
        std::uint64_t n = 0;
        for (int i = 1; i < 9; ++i) n = (n << 8) | static_cast<unsigned char>(reply[i]);
        if (code == 0) {
            id_ = n;
            return "";
        }
        return std::string(qq::text(code));
    }

    std::uint64_t id() const noexcept override { return id_; }
    std::string via() const override { return "qmail-queued"; }

private:
    bool frame(char type, std::string_view payload) {
        char head[5] = {type, static_cast<char>(payload.size() >> 24), static_cast<char>(payload.size() >> 16),
                        static_cast<char>(payload.size() >> 8), static_cast<char>(payload.size())};
        return write_all(fd_, std::string_view(head, 5)) && write_all(fd_, payload);
    }
    void flush() {
        if (!error_ && !buf_.empty()) error_ = !frame(queued::kData, buf_);
        buf_.clear();
    }

    int fd_;
    std::string buf_;
    bool error_ = false;
    std::uint64_t id_ = 0;
};

// A connection to qmail-queued, or -1 when it is not listening.
int connect_queued(const fs::path& socket_path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.string().size() >= sizeof addr.sun_path) return -1;
    std::strcpy(addr.sun_path, socket_path.c_str());
    // without waiting: when qmail-queued's listen queue is full (it serves as many clients as it takes),
    // the caller writes the message itself rather than wait for a place
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
        ::close(fd);
        return -1;
    }
    // a qmail-queued that hangs (a stuck disk) is a temporary failure after 20 minutes, not a client
    // waiting for ever; SMTP clients give up on the reply to the final dot after 10 (RFC 5321 4.5.3.2)
    timeval tv{1200, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

}  // namespace

fs::path mta_program(const Paths& paths, std::string_view name) {
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        fs::path beside = self.parent_path() / name;
        if (::access(beside.c_str(), X_OK) == 0) return beside;
    }
    return paths.sbindir / name;
}

fs::path default_queue_program(const Paths& paths) {
    return mta_program(paths, "qmail-queue");
}

std::unique_ptr<QueueSubmission> QueueSubmission::open_queued(const Paths& paths) {
    int fd = connect_queued(paths.queue_socket);
    if (fd < 0) return nullptr;
    return std::make_unique<DaemonSubmission>(fd);
}

std::unique_ptr<QueueSubmission> QueueSubmission::open(const Paths& paths, const std::vector<std::string>* env) {
    if (!paths.qmailqueue) {
        int fd = connect_queued(paths.queue_socket);
        if (fd >= 0) return std::make_unique<DaemonSubmission>(fd);
    }
    return std::make_unique<ProgramSubmission>(
        paths.qmailqueue ? fs::path(*paths.qmailqueue) : default_queue_program(paths), env);
}

bool queued::read_exact(int fd, char* buf, std::size_t size) {
    std::size_t have = 0;
    while (have < size) {
        ssize_t n = ::read(fd, buf + have, size - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        have += static_cast<std::size_t>(n);
    }
    return true;
}

}  // namespace qv
