// Handing a message to the queue, as qmail's programs do it (qmail_open, qmail_put, qmail_close), and
// the protocol of qmail-queued, the resident queue writer.
//
// A program that queues mail (qmail-smtpd; later qmail-send's bounces) opens a QueueSubmission:
//   QMAILQUEUE set      that program is run, as qmail runs qmail-queue: the message on descriptor 0,
//                       the envelope on 1, descriptor 6 for a custom error (exit 82);
//   qmail-queued runs   the message goes over its socket, and no program is run at all;
//   otherwise           qmail-queue (beside the running program, else in sbindir) is run as above.
//
// qmail-queued's socket (QUEUED_SOCKET, default QMAILHOME/run/qmail-queued.sock) speaks frames of a
// type byte and a 32-bit big-endian length: 'M' message data (any number), then one 'E' holding the
// envelope as qmail-queue reads it on descriptor 1 (format_envelope). The answer is one byte, the exit
// code qmail-queue would have given, and the message's number as 8 bytes big-endian. A connection
// closed before 'E' abandons the message. The writer takes the client's pid and uid from the socket
// (SO_PEERCRED) for its Received line.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/queue.hpp"

namespace qv {

struct Paths;

namespace queued {
constexpr char kData = 'M';
constexpr char kEnvelope = 'E';
constexpr std::uint32_t kMaxFrame = 1u << 20;  // a frame's payload, at most
// Reads exactly `size` bytes from the socket; false at its end or on an error.
bool read_exact(int fd, char* buf, std::size_t size);
}  // namespace queued

class QueueSubmission {
public:
    // Throws QueueError (120 when no program can be run). `env` (NAME=value strings): the whole
    // environment of the program run, when one is run (qmail-send's bounces: BOUNCEQUEUE's and the
    // envrules' settings); nullptr: this process's.
    static std::unique_ptr<QueueSubmission> open(const Paths& paths, const std::vector<std::string>* env = nullptr);
    // qmail-queued only: nullptr when it does not listen (qmail-queue itself, which then writes alone).
    static std::unique_ptr<QueueSubmission> open_queued(const Paths& paths);
    virtual ~QueueSubmission() = default;

    // Message bytes. A failure is remembered and reported by close().
    virtual void write(std::string_view data) = 0;
    // The message must not be queued (it is too big, or looping): close() abandons it.
    void fail() noexcept { failed_ = true; }
    bool failed() const noexcept { return failed_; }
    // Sends the envelope and waits for the verdict: "" when the message is queued, else qmail's text,
    // "D..." for a permanent and "Z..." for a temporary failure (qq::text, or a program's own on 82).
    virtual std::string close(const Envelope& e) = 0;
    // After close(): the exit code qmail-queue gave (or would have given) for it.
    int exit_code() const noexcept { return code_; }
    // What identifies the submission in replies and logs: qmail-queue's pid ("qp" in qmail's 250
    // reply), or qmail-queued's message number once queued.
    virtual std::uint64_t id() const noexcept = 0;
    // Which way it went: "qmail-queued", or the program run.
    virtual std::string via() const = 0;

protected:
    bool failed_ = false;
    int code_ = 0;
};

// The queue program a submission runs when QMAILQUEUE is not set and qmail-queued does not listen:
// qmail-queue in the running program's own directory, else in sbindir.
std::filesystem::path default_queue_program(const Paths& paths);
// An MTA program (qmail-queue, qmail-remote, ...): the one in the running program's own directory, else
// the one in sbindir.
std::filesystem::path mta_program(const Paths& paths, std::string_view name);

}  // namespace qv
