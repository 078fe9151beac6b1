// qmail-queue - put a message into the queue, with qmail's interface. See qmail-queue(8).
//
// The message comes on descriptor 0, the envelope (F<sender>\0T<recipient>\0...\0) on descriptor 1;
// the exit code says what happened (0 queued; 11-40 permanent; others temporary). When qmail-queued
// listens, the message goes to it and is made durable together with other clients' messages in one
// flush; otherwise this program writes the queue itself, flushing each file and directory.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iostream>
#include <new>
#include <string>

#include "qvmail/paths.hpp"
#include "qvmail/queue.hpp"
#include "qvmail/queue_client.hpp"

namespace {

constexpr unsigned kDeath = 86400;  // as qmail-queue: give up after a day (qmail-send cleans up after 36 hours)

// Reads descriptor `fd` to its end, handing each piece to `put`. Throws QueueError 54.
template <class Put>
void drain(int fd, Put put) {
    static char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw qv::QueueError(qv::qq::read_error, std::string("cannot read: ") + std::strerror(errno));
        if (n == 0) return;
        put(std::string_view(buf, static_cast<std::size_t>(n)));
    }
}

qv::Envelope read_envelope() {
    std::string data;
    drain(1, [&](std::string_view s) {
        data.append(s);
        if (data.size() > qv::kMaxEnvelope) throw qv::QueueError(qv::qq::format, "the envelope is too large");
    });
    return qv::parse_envelope(data);
}

int run() {
    qv::Paths paths;
    try {
        paths = qv::Paths::from_env();
    } catch (const std::exception&) {
        return qv::qq::config;
    }
    if (auto sub = qv::QueueSubmission::open_queued(paths)) {
        drain(0, [&](std::string_view s) { sub->write(s); });
        qv::Envelope e = read_envelope();
        sub->close(e);
        return sub->exit_code();
    }
    qv::QueueDirs dirs(paths.queuedir);
    qv::QueueInjection message(dirs);
    message.write(qv::queue_received_line(::getpid(), ::getuid(), std::time(nullptr)));
    drain(0, [&](std::string_view s) { message.write(s); });
    message.write_envelope(::getuid(), ::getpid(), read_envelope());
    message.commit_alone();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "--version") == 0)) {
        if (argv[1][2] == 'v') {
            std::cout << "qmail-queue " QV_VERSION "\n";
        } else {
            std::cout << "usage: qmail-queue  (the message on descriptor 0, the envelope F<sender>\\0T<recipient>\\0...\\0\n"
                         "on descriptor 1; exit 0 queued, 11-40 permanent failure, others temporary). See qmail-queue(8).\n";
        }
        return 0;
    }
    ::umask(033);
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGALRM, [](int) { ::_exit(qv::qq::timeout); });
    ::alarm(kDeath);
    try {
        return run();
    } catch (const qv::QueueError& e) {
        return e.code();
    } catch (const std::bad_alloc&) {
        return qv::qq::nomem;
    } catch (const std::exception&) {
        return qv::qq::bug;
    }
}
