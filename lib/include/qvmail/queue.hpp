// The mail queue, laid out as notqmail lays it out, so that qmail-qstat, qmail-qread and qmHandle keep
// working on it (QUEUEDIR, default QMAILHOME/queue):
//   pid/            a message's file is made here first; its inode number N names the message
//   mess/<N%23>/N   the message: qmail-queue's Received line, then the data as the client sent it
//   intd/N          the envelope being written: u<uid>\0p<pid>\0F<sender>\0T<recipient>\0...
//   todo/N          the same file, linked here once complete and durable: the message is queued
//   info/, local/, remote/ (split like mess/), bounce/   qmail-send's, once it has preprocessed N
//   lock/trigger    a FIFO qmail-send reads: one byte written there says "look at todo/"; qvmail's
//                   writers write "N\n" for each message they queued instead (TriggerReader below)
//   pool/N          qvmail's own (notqmail's tools never look): files of finished messages, kept for
//                   qmail-queued to reuse (QueuePool below)
//
// The order that loses nothing: the message data is durable before its envelope exists, and the
// envelope is durable before its todo/ link appears; only then is the message acknowledged. On Linux
// the directories are synced too (a new name is durable only once its directory is). A message whose
// todo/ link (or info/ file) does not exist is not queued: it is being written, or its writer died,
// and qmail-send removes such leftovers after 36 hours.
//
// Two ways to commit (see qmail-queue(8), qmail-queued(8)): alone, a writer flushes each file and
// directory itself; a resident queue writer (qmail-queued) takes the messages of many clients and
// makes each batch durable with one flush of the filesystem and one of todo/, before any of them is
// acknowledged.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/atomic_file.hpp"
#include "qvmail/progress.hpp"

namespace qv {

struct Paths;

constexpr int kQueueSplit = 23;         // notqmail's conf-split
constexpr std::size_t kQueueAddr = 1003;  // longest address qmail-queue takes (exit 11 beyond)
constexpr std::size_t kMaxEnvelope = 64u << 20;  // a larger envelope is refused (exit 91)

// qmail-queue's exit codes (qmail-queue(8)): 0, 11-40 permanent, every other one temporary.
namespace qq {
constexpr int ok = 0, addr_too_long = 11, refused = 31, nomem = 51, timeout = 52, write_error = 53,
              read_error = 54, config = 55, network = 56, home = 61, queue_dir = 62, pid = 63, mess = 64,
              intd = 65, todo = 66, bug = 81, custom = 82, format = 91, cannot_run = 120;
// Whether `code` is a permanent failure.
inline bool permanent(int code) noexcept {
    return code >= 11 && code <= 40;
}
// qmail's text for a qmail-queue exit code, as qmail-smtpd answers it after DATA: "D..." permanent,
// "Z..." temporary, "" for 0 (qmail.c's qmail_close).
std::string_view text(int code) noexcept;
}  // namespace qq

// A failure to queue, carrying qmail-queue's exit code.
class QueueError : public std::runtime_error {
public:
    QueueError(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int code() const noexcept { return code_; }

private:
    int code_;
};

class QueueDirs {
public:
    explicit QueueDirs(std::filesystem::path root, int split = kQueueSplit)
        : root_(std::move(root)), split_(split) {}
    const std::filesystem::path& root() const noexcept { return root_; }
    int split() const noexcept { return split_; }
    std::filesystem::path mess(std::uint64_t n) const { return split_path("mess", n); }
    std::filesystem::path info(std::uint64_t n) const { return split_path("info", n); }
    std::filesystem::path local(std::uint64_t n) const { return split_path("local", n); }
    std::filesystem::path remote(std::uint64_t n) const { return split_path("remote", n); }
    std::filesystem::path todo(std::uint64_t n) const { return root_ / "todo" / std::to_string(n); }
    std::filesystem::path intd(std::uint64_t n) const { return root_ / "intd" / std::to_string(n); }
    std::filesystem::path bounce(std::uint64_t n) const { return root_ / "bounce" / std::to_string(n); }
    std::filesystem::path trigger() const { return root_ / "lock" / "trigger"; }
    std::filesystem::path pool() const { return root_ / "pool"; }

private:
    std::filesystem::path split_path(const char* dir, std::uint64_t n) const {
        return root_ / dir / std::to_string(n % static_cast<std::uint64_t>(split_)) / std::to_string(n);
    }
    std::filesystem::path root_;
    int split_;
};

// The envelope as qmail-queue reads it on descriptor 1: F<sender>\0, then T<recipient>\0 for each
// recipient, then one more \0.
struct Envelope {
    std::string sender;
    std::vector<std::string> recipients;
};
std::string format_envelope(const Envelope& e);
// Parses the whole of what arrived on descriptor 1. Throws QueueError 54 (cut short), 91 (malformed) or
// 11 (an address of kQueueAddr bytes or more).
Envelope parse_envelope(std::string_view data);

// qmail-queue's own Received line: "Received: (qmail PID invoked WHO); DATE\n", WHO being "from network"
// for qmail-smtpd's user (qmaild), "by alias", "for bounce" (qmails) or "by uid UID".
std::string queue_received_line(pid_t pid, uid_t uid, std::time_t when);
// An RFC 5322 date as qmail writes it: "2 Dec 2026 10:00:00 -0000".
std::string rfc822_date(std::time_t when);

// The files of finished messages, reused by qmail-queued for new ones instead of being removed and
// made again: a file that exists costs no inode allocation, which on a busy queue is most of a writer's
// time (ext4 without a journal walks past every inode freed in the last minute or more before it hands
// one out, and holds the directory's lock while it does). qmail-send puts a message's file (mess/N,
// intd/N, once it is the file's only name and no larger than kPoolFileMax) into pool/, named by its
// inode number, while the pool holds fewer than kPoolMax; otherwise it removes it as before.
// A pooled file still holds its old message. It is taken only once a flush of the filesystem that began
// after it entered the pool has finished (QueuePool::flush_done): by then the removal of the old message's
// other files (todo/N, info/N) is durable, so a crash can never pair them with a new message's data. The
// taker moves it to its new name (never replacing anything there), overwrites it from the start and cuts
// it to what it wrote before the commit's flush (emptying it first would free its blocks only to
// allocate them again); a crash before that leaves a file that was never queued, removed as any other.
constexpr std::size_t kPoolMax = 2048;
constexpr off_t kPoolFileMax = 64 * 1024;

struct PooledFile {
    int fd = -1;               // open for writing at offset 0, its old bytes still there, its times set to now
    std::uint64_t number = 0;  // its inode number (its name in pool/)
};

class QueuePool {
public:
    explicit QueuePool(const QueueDirs& dirs);
    // The writer starts a flush of the whole filesystem (syncfs), and has finished it: what entered
    // the pool before the start may be taken after the finish.
    void flush_starting() noexcept;
    void flush_done() noexcept;
    // A file from the pool, moved to where(its number) (never over a file there) and emptied; nullopt
    // when none may be taken now, or it cannot be put there (the caller makes a new file). Thread-safe.
    std::optional<PooledFile> take(const std::function<std::filesystem::path(std::uint64_t)>& where);
    std::uint64_t taken() const;  // files reused so far

private:
    void refill();  // under mu_
    QueueDirs dirs_;
    uid_t owner_;
    mutable std::mutex mu_;
    std::uint64_t taken_ = 0;
    std::vector<std::uint64_t> names_;
    std::timespec flush_started_{}, safe_before_{};  // files that entered the pool before safe_before_
    bool refilled_ = false;
    std::timespec refilled_at_{};  // safe_before_ when pool/ was last read
};

// qmail-send's side: removes a finished message's file, or puts it into the pool.
class QueueRecycler {
public:
    explicit QueueRecycler(const QueueDirs& dirs);
    // `p`: mess/N or intd/N, whose other names are already gone. Never throws.
    void remove(const std::filesystem::path& p) noexcept;
    std::uint64_t recycled() const noexcept { return recycled_; }

private:
    void count();
    QueueDirs dirs_;
    bool pool_ = false;
    uid_t pool_owner_ = 0;
    std::size_t in_pool_ = 0, since_count_ = 0;
    std::uint64_t recycled_ = 0;
};

// One message being put into the queue: created (numbered) at once, filled, then committed or
// abandoned. Not thread-safe; one writer per message.
class QueueInjection {
public:
    // Creates the message file (pid/ → mess/<N%split>/N), or takes one from `pool`. Throws QueueError
    // 61-64.
    explicit QueueInjection(const QueueDirs& dirs, QueuePool* pool = nullptr);
    ~QueueInjection();  // abandons the message unless it was committed
    QueueInjection(const QueueInjection&) = delete;
    QueueInjection& operator=(const QueueInjection&) = delete;

    std::uint64_t number() const noexcept { return number_; }
    void write(std::string_view data);  // message bytes (buffered); throws QueueError 53
    // Writes intd/N: u<uid>\0p<pid>\0F...\0T...\0 (the data must all be written). Throws QueueError 53/65.
    void write_envelope(uid_t uid, pid_t pid, const Envelope& e);
    std::uint64_t size() const noexcept { return size_; }

    // Alone: flushes the message, then the envelope (files and directories), links todo/N, flushes
    // todo/, pulls the trigger. Returns how many flushes it took. Throws QueueError 53/66.
    int commit_alone();
    // For a group commit: the caller has made the message and envelope durable (one flush of the
    // filesystem for a whole batch); links todo/N. Throws QueueError 66. The caller flushes todo/.
    void link_todo();
    // After the caller's flush of the filesystem: whether writing this message's files back failed
    // (syncfs says that some write failed, not whose; each file keeps its own error). Throws
    // QueueError 53.
    void check_written();
    // Removes whatever was made (truncating first, as qmail-queue does). Never throws.
    void abandon() noexcept;

private:
    void flush_buffer();
    QueueDirs dirs_;
    QueuePool* pool_ = nullptr;
    std::uint64_t number_ = 0;
    int mess_fd_ = -1;
    int intd_fd_ = -1;
    bool mess_pooled_ = false, intd_pooled_ = false;  // old bytes past what we write: cut them off
    std::string buf_;
    std::uint64_t size_ = 0;
    bool committed_ = false;
};

// fsync of a directory (a new name in it is durable afterwards). Throws QueueError `code`.
void sync_dir(const std::filesystem::path& dir, int code);
// Tells qmail-send, without blocking, that messages were queued: "N\n" for each of `numbers` (in writes
// of at most kTriggerChunk bytes of whole records, each atomic), or qmail's single byte when there are
// none. Nothing when qmail-send is not reading; a record that finds the FIFO full is dropped, and the
// reader then sees a full FIFO (TriggerReader). notqmail's qmail-send reads and ignores what it reads.
void pull_trigger(const QueueDirs& dirs, const std::vector<std::uint64_t>& numbers = {}) noexcept;
constexpr std::size_t kTriggerChunk = 512;

// qmail-send's side of lock/trigger: which messages were queued, so that it need not list todo/.
class TriggerReader {
public:
    struct News {
        std::vector<std::uint64_t> numbers;  // todo/N to look at
        bool scan = false;  // look at the whole of todo/: qmail's byte, a record that is not a number,
                            // or a FIFO drained full (a writer may have found no room and said nothing)
    };
    // `fd`: the FIFO opened O_RDONLY|O_NONBLOCK. Throws Error 74 when its capacity cannot be read.
    explicit TriggerReader(int fd);
    // Everything written since the last call (records cut by a read wait for their end).
    News drain();

private:
    int fd_;
    std::size_t capacity_;
    std::string partial_;
};

// ---- what the queue holds (qmailctl queue stat|list) ----

struct QueuedMessage {
    std::uint64_t number = 0;
    enum State {
        todo,          // queued, not yet preprocessed by qmail-send
        preprocessed,  // info/ local/ remote/ made by qmail-send
        incomplete,    // no todo/ link and no info/: being written, or its writer died
    } state = incomplete;
    std::string sender;
    struct Recipient {
        std::string address;
        bool done = false;    // delivered or bounced (a 'D' mark)
        bool remote = false;  // in remote/ (preprocessed only)
    };
    std::vector<Recipient> recipients;
    std::uint64_t size = 0;  // the message file's bytes
    std::time_t time = 0;    // when it was queued (the message file's modification time)
};
const char* state_name(QueuedMessage::State s) noexcept;

// Every message file of the queue, oldest first. A message that vanishes while it is read (delivered
// meanwhile) is left out. Throws Error 66/74 when the queue cannot be read.
// `progress` hears of it every 256 messages.
std::vector<QueuedMessage> scan_queue(const QueueDirs& dirs, const ProgressFn& progress = {});

// ---- the running qmail-send ----
// qmail-send holds an exclusive lock on lock/sendmutex while it runs and keeps its pid there. The pid of
// the qmail-send running on this queue, or nullopt when none runs. Throws Error 66/74 when the file
// cannot be read.
std::optional<pid_t> running_qmail_send(const QueueDirs& dirs);

// ---- qmailctl queue init ----

// The queue's owners: notqmail's qmailq (the queue), qmails (qmail-send) and qmailr (qmail-remote), in
// group qmail. Users that do not exist (and everything when not run as root) fall back to the caller.
struct QueueOwners {
    Owner q, s, r;
    std::vector<std::string> missing;  // the users and groups that do not exist (for a warning)
};
QueueOwners queue_owners();
// Creates what is missing of the queue (directories with notqmail's modes and owners, lock/trigger as
// a FIFO, lock/sendmutex, lock/tcpto), and fixes the modes and owners of what is there. Returns the
// steps taken (none when nothing needed doing). Throws Error 73/77.
std::vector<std::string> init_queue(const QueueDirs& dirs, const QueueOwners& owners, bool dry_run);

}  // namespace qv
