// qmail-queued - the resident queue writer: puts the messages of many clients into the queue and makes
// them durable together. See qmail-queued(8).
//
// Each client (qmail-smtpd, qmail-queue) connects to the socket and streams one message and its
// envelope (queue_client.hpp). A serving thread per client writes mess/N and intd/N without flushing. The
// committer takes every message that is complete, makes them all durable with one flush of the queue's
// filesystem (syncfs), links each intd/N to todo/N, flushes todo/ once, and only then answers the
// clients. While it flushes, the next batch gathers: two flushes per batch, however many messages.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/queue.hpp"
#include "qvmail/queue_client.hpp"

namespace {

namespace fs = std::filesystem;

constexpr int kMaxClients = 1000;  // a thread each
std::atomic<bool> g_stop{false};
int g_listen_fd = -1;

void log_line(const std::string& s) {
    std::string line = "qmail-queued: " + s + "\n";
    [[maybe_unused]] ssize_t n = ::write(2, line.data(), line.size());
}

// One message waiting for the committer.
struct Pending {
    qv::QueueInjection* message;
    int code = -1;  // set by the committer
};

class Committer {
public:
    Committer(const qv::QueueDirs& dirs, qv::QueuePool& pool) : dirs_(dirs), pool_(pool) {
        root_fd_ = ::open(dirs.root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        todo_fd_ = ::open((dirs.root() / "todo").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd_ < 0 || todo_fd_ < 0)
            throw qv::Error(qv::Exit::noinput, "cannot open the queue " + dirs.root().string() + ": " +
                                                   std::strerror(errno));
        thread_ = std::thread([this] { loop(); });
    }
    ~Committer() {
        {
            std::lock_guard<std::mutex> g(mu_);
            stopping_ = true;
        }
        wake_.notify_all();
        thread_.join();
        ::close(root_fd_);
        ::close(todo_fd_);
    }

    // Waits until the message is durable and queued (0), or has failed (qmail-queue's code).
    int commit(qv::QueueInjection& m) {
        Pending p{&m};
        std::unique_lock<std::mutex> g(mu_);
        waiting_.push_back(&p);
        wake_.notify_all();
        done_.wait(g, [&] { return p.code >= 0; });
        return p.code;
    }

    std::string stats() const {
        std::lock_guard<std::mutex> g(mu_);
        std::string s = std::to_string(messages_) + " messages in " + std::to_string(batches_) + " batches, " +
                        std::to_string(flushes_) + " flushes";
        if (messages_) {
            char buf[64];
            std::snprintf(buf, sizeof buf, " (%.3f a message)", static_cast<double>(flushes_) / messages_);
            s += buf;
        }
        return s;
    }

private:
    void loop() {
        std::unique_lock<std::mutex> g(mu_);
        for (;;) {
            wake_.wait(g, [&] { return stopping_ || !waiting_.empty(); });
            if (waiting_.empty()) return;  // stopping, nothing left
            std::vector<Pending*> batch;
            batch.swap(waiting_);
            g.unlock();
            // 1. every message and envelope of the batch durable (files and the names in mess/, intd/)
            int code = 0;
            int flushes = 1;
            pool_.flush_starting();
            if (::syncfs(root_fd_) != 0) {
                log_line("cannot flush the queue's filesystem: " + std::string(std::strerror(errno)));
                code = qv::qq::write_error;
            } else {
                pool_.flush_done();  // what entered the pool before it began may be reused now
            }
            // 2. the commit links, then 3. todo/ durable: only now are the messages queued. The clients
            // learn their results only at the end, under the lock: until then the committer uses them.
            std::vector<int> results(batch.size(), code);
            std::vector<std::uint64_t> linked;
            for (std::size_t i = 0; i < batch.size() && !code; ++i) {
                try {
                    batch[i]->message->check_written();
                    batch[i]->message->link_todo();
                    linked.push_back(batch[i]->message->number());
                } catch (const qv::QueueError& e) {
                    log_line("message " + std::to_string(batch[i]->message->number()) + ": " + e.what());
                    results[i] = e.code();
                }
            }
            if (!linked.empty()) {
                ++flushes;
                if (::fsync(todo_fd_) != 0) {
                    log_line("cannot flush todo/: " + std::string(std::strerror(errno)));
                    for (int& r : results)
                        if (r == 0) r = qv::qq::todo;  // maybe queued after all: a duplicate, never a loss
                }
                qv::pull_trigger(dirs_, linked);  // qmail-send takes these without listing todo/
            }
            g.lock();
            ++batches_;
            flushes_ += static_cast<std::uint64_t>(flushes);
            for (std::size_t i = 0; i < batch.size(); ++i) {
                if (results[i] == 0) ++messages_;
                batch[i]->code = results[i];
            }
            done_.notify_all();
        }
    }

    qv::QueueDirs dirs_;
    qv::QueuePool& pool_;
    int root_fd_ = -1, todo_fd_ = -1;
    mutable std::mutex mu_;
    std::condition_variable wake_, done_;
    std::vector<Pending*> waiting_;
    bool stopping_ = false;
    std::uint64_t messages_ = 0, batches_ = 0, flushes_ = 0;
    std::thread thread_;
};

void answer(int fd, int code, std::uint64_t number) {
    char reply[9];
    reply[0] = static_cast<char>(code);
    for (int i = 0; i < 8; ++i) reply[8 - i] = static_cast<char>((number >> (8 * i)) & 255);
    [[maybe_unused]] ssize_t n = ::send(fd, reply, sizeof reply, MSG_NOSIGNAL);
}

// One client: its message, from the first frame to the answer.
void serve(int fd, const qv::QueueDirs& dirs, qv::QueuePool& pool, Committer& committer) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        ::close(fd);
        return;
    }
    timeval tv{3600, 0};  // a client that stops sending for an hour is gone
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int code = 0;
    std::uint64_t number = 0;
    try {
        qv::QueueInjection message(dirs, &pool);
        number = message.number();
        message.write(qv::queue_received_line(cred.pid, cred.uid, std::time(nullptr)));
        std::string payload;
        for (;;) {
            char head[5];
            if (!qv::queued::read_exact(fd, head, sizeof head)) {  // the client went away: nothing is queued
                ::close(fd);
                return;
            }
            std::uint32_t size = (static_cast<std::uint32_t>(static_cast<unsigned char>(head[1])) << 24) |
                                 (static_cast<std::uint32_t>(static_cast<unsigned char>(head[2])) << 16) |
                                 (static_cast<std::uint32_t>(static_cast<unsigned char>(head[3])) << 8) |
                                 static_cast<unsigned char>(head[4]);
            if (head[0] != qv::queued::kData && head[0] != qv::queued::kEnvelope)
                throw qv::QueueError(qv::qq::format, "not qmail-queued's protocol");
            if (size > (head[0] == qv::queued::kData ? qv::queued::kMaxFrame : qv::kMaxEnvelope))
                throw qv::QueueError(qv::qq::format, "a frame too large");
            // memory as the bytes arrive, not as the header promises
            payload.clear();
            while (payload.size() < size) {
                std::size_t have = payload.size(), piece = std::min<std::size_t>(size - have, qv::queued::kMaxFrame);
                payload.resize(have + piece);
                if (!qv::queued::read_exact(fd, payload.data() + have, piece)) {
                    ::close(fd);
                    return;
                }
            }
            if (head[0] == qv::queued::kData) {
                message.write(payload);
                continue;
            }
            message.write_envelope(cred.uid, cred.pid, qv::parse_envelope(payload));
            break;
        }
        code = committer.commit(message);
    } catch (const qv::QueueError& e) {
        code = e.code();
        if (code != qv::qq::addr_too_long) log_line(e.what());
    } catch (const std::bad_alloc&) {
        code = qv::qq::nomem;
    } catch (const std::exception& e) {
        log_line(e.what());
        code = qv::qq::bug;
    }
    answer(fd, code, code == 0 ? number : 0);
    ::close(fd);
}

// The serving threads: they stay once started (a thread made for each client cost a clone, and a
// stack's mmap and munmap, for every message), up to kMaxClients; one idle for kIdleExit ends.
class Servers {
public:
    using Serve = std::function<void(int)>;
    explicit Servers(Serve serve) : serve_(std::move(serve)) {}
    ~Servers() {
        {
            std::lock_guard<std::mutex> g(mu_);
            stop_ = true;
        }
        work_.notify_all();
        std::unique_lock<std::mutex> g(mu_);
        gone_.wait(g, [&] { return threads_ == 0; });
    }
    // Hands the client to an idle thread or a new one; waits while kMaxClients are busy (the clients
    // after them wait in the listen queue, and when that is full they write their messages
    // themselves: queue_client.cpp). False when no thread could be made.
    bool give(int fd) {
        std::unique_lock<std::mutex> g(mu_);
        while (busy_ >= static_cast<std::size_t>(kMaxClients) && !g_stop)  // g_stop: set by a signal
            free_.wait_for(g, std::chrono::milliseconds(100));
        fds_.push_back(fd);
        ++busy_;
        if (idle_ < fds_.size()) {
            try {
                std::thread([this] { run(); }).detach();
                ++threads_;
            } catch (const std::exception& e) {
                fds_.pop_back();
                --busy_;
                log_line(std::string("cannot serve a client: ") + e.what());
                return false;
            }
        }
        g.unlock();
        work_.notify_one();
        return true;
    }
    // Waits up to `limit` for the clients being served; false if some are still busy.
    bool drain(std::chrono::milliseconds limit) {
        std::unique_lock<std::mutex> g(mu_);
        return free_.wait_for(g, limit, [&] { return busy_ == 0; });
    }
private:
    void run() {
        std::unique_lock<std::mutex> g(mu_);
        for (;;) {
            ++idle_;
            bool got = work_.wait_for(g, kIdleExit, [&] { return stop_ || !fds_.empty(); });
            --idle_;
            if (!got || fds_.empty()) break;  // idle too long, or stopping
            int fd = fds_.front();
            fds_.pop_front();
            g.unlock();
            serve_(fd);
            g.lock();
            --busy_;
            free_.notify_all();
        }
        --threads_;
        gone_.notify_all();
    }
    static constexpr std::chrono::seconds kIdleExit{60};
    Serve serve_;
    std::mutex mu_;
    std::condition_variable work_, free_, gone_;
    std::deque<int> fds_;
    std::size_t busy_ = 0, idle_ = 0, threads_ = 0;
    bool stop_ = false;
};

// The socket: made afresh (a stale one, with nobody listening, is removed), mode 0666 since any
// local user may queue mail, as anyone may run qmail-queue.
int listen_on(const fs::path& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.string().size() >= sizeof addr.sun_path)
        throw qv::Error(qv::Exit::config, path.string() + ": too long for a unix socket (QUEUED_SOCKET)");
    std::strcpy(addr.sun_path, path.c_str());
    // run/ 0755 whatever the umask: every local user may reach the socket
    std::error_code ec;
    mode_t mask = ::umask(022);
    fs::create_directories(path.parent_path(), ec);
    ::umask(mask);
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        ::close(probe);
        throw qv::Error(qv::Exit::tempfail, "another qmail-queued listens on " + path.string());
    }
    if (probe >= 0) ::close(probe);
    ::unlink(path.c_str());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw qv::sys_error(qv::Exit::cantcreat, "cannot make a socket for", path, errno);
    mode_t old = ::umask(0);
    int r = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (r != 0 || ::listen(fd, 256) != 0) {
        int e = errno;
        ::close(fd);
        throw qv::sys_error(qv::Exit::cantcreat, "cannot listen on", path, e);
    }
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "--version") == 0)) {
        std::cout << (argv[1][2] == 'v' ? "qmail-queued " QV_VERSION "\n"
                                         : "usage: qmail-queued  (in the foreground, under a supervisor: the resident\n"
                                           "queue writer for QUEUEDIR, listening on QUEUED_SOCKET). See qmail-queued(8).\n");
        return 0;
    }
    if (argc != 1) {
        std::cerr << "qmail-queued: takes no arguments (see qmail-queued(8))\n";
        return 64;
    }
    ::umask(033);
    ::signal(SIGPIPE, SIG_IGN);
    struct sigaction sa {};
    sa.sa_handler = [](int) {
        g_stop = true;
        if (g_listen_fd >= 0) ::shutdown(g_listen_fd, SHUT_RDWR);
    };
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    try {
        qv::Paths paths = qv::Paths::from_env();
        qv::QueueDirs dirs(paths.queuedir);
        if (!qv::path_exists(dirs.root() / "todo"))
            throw qv::Error(qv::Exit::noinput, "no queue at " + dirs.root().string() + " (qmailctl queue init)");
        // pool/: qmail-send keeps finished messages' files there for us (qmailctl queue init makes it)
        if (::mkdir(dirs.pool().c_str(), 0700) != 0 && errno != EEXIST)
            log_line("cannot make " + dirs.pool().string() + ": " + std::strerror(errno) + "; every message gets new files");
        qv::QueuePool pool(dirs);
        Committer committer(dirs, pool);
        g_listen_fd = listen_on(paths.queue_socket);
        log_line("writing " + dirs.root().string() + " for clients of " + paths.queue_socket.string());
        Servers servers([&](int fd) { serve(fd, dirs, pool, committer); });
        while (!g_stop) {
            int fd = ::accept4(g_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (g_stop) break;
                log_line(std::string("accept: ") + std::strerror(errno));
                ::poll(nullptr, 0, 100);
                continue;
            }
            if (!servers.give(fd)) {  // no thread: the client is told to try again later
                answer(fd, qv::qq::nomem, 0);
                ::close(fd);
            }
        }
        ::close(g_listen_fd);
        ::unlink(paths.queue_socket.c_str());
        // the clients still sending finish (their answers may already be on the way)
        bool drained = servers.drain(std::chrono::seconds(30));
        log_line("stopped: " + committer.stats() + "; " + std::to_string(pool.taken()) + " files reused from pool/");
        if (!drained) ::_exit(0);  // a client that stalls is abandoned; its message was never acknowledged
        return 0;
    } catch (const std::exception& e) {
        log_line(e.what());
        auto* err = dynamic_cast<const qv::Error*>(&e);
        return err ? static_cast<int>(err->code()) : 70;
    }
}
