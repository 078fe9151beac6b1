// The queue's layout, its envelopes and the no-loss order of writing a message. See queue.hpp.
#include "qvmail/queue.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>

#include "qvmail/control.hpp"
#include "qvmail/error.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace qq {

std::string_view text(int code) noexcept {
    switch (code) {
        case ok:
            return "";
        case 115:  // compatibility
        case addr_too_long:
            return "Denvelope address too long for qq (#5.1.3)";
        case refused:
            return "Dmail server permanently rejected message (#5.3.0)";
        case nomem:
            return "Zqq out of memory (#4.3.0)";
        case timeout:
            return "Zqq timeout (#4.3.0)";
        case write_error:
            return "Zqq write error or disk full (#4.3.0)";
        case read_error:
            return "Zqq read error (#4.3.0)";
        case config:
            return "Zqq unable to read configuration (#4.3.0)";
        case network:
            return "Zqq trouble making network connection (#4.3.0)";
        case home:
            return "Zqq trouble in home directory (#4.3.0)";
        case queue_dir:
        case pid:
        case mess:
        case intd:
        case todo:
            return "Zqq trouble creating files in queue (#4.3.0)";
        case 71:
            return "Zmail server temporarily rejected message (#4.3.0)";
        case 72:
            return "Zconnection to mail server timed out (#4.4.1)";
        case 73:
            return "Zconnection to mail server rejected (#4.4.1)";
        case 74:
            return "Zcommunication with mail server failed (#4.4.2)";
        case format:
        case bug:
            return "Zqq internal bug (#4.3.0)";
        case cannot_run:
            return "Zunable to exec qq (#4.3.0)";
        default:
            return permanent(code) ? "Dqq permanent problem (#5.3.0)" : "Zqq temporary problem (#4.3.0)";
    }
}

}  // namespace qq

// ---- envelopes ----

std::string format_envelope(const Envelope& e) {
    std::string s = "F" + e.sender;
    s += '\0';
    for (auto& r : e.recipients) {
        s += 'T';
        s += r;
        s += '\0';
    }
    s += '\0';
    return s;
}

Envelope parse_envelope(std::string_view data) {
    Envelope e;
    // cut short (the writer went away before the last \0) is a read error, as qmail-queue takes it
    auto field = [&](char type, std::string& out) {
        if (data.empty()) throw QueueError(qq::read_error, "the envelope ends early");
        if (data[0] != type) throw QueueError(qq::format, std::string("the envelope has no ") + type + " field");
        std::size_t nul = data.find('\0', 1);
        std::size_t len = (nul == std::string_view::npos ? data.size() : nul) - 1;
        if (len >= kQueueAddr) throw QueueError(qq::addr_too_long, "an envelope address is too long");
        if (nul == std::string_view::npos) throw QueueError(qq::read_error, "the envelope ends early");
        out.assign(data.substr(1, len));
        data.remove_prefix(nul + 1);
    };
    field('F', e.sender);
    for (;;) {
        if (data.empty()) throw QueueError(qq::read_error, "the envelope ends early");
        if (data[0] == '\0') break;
        field('T', e.recipients.emplace_back());
    }
    if (data.size() != 1) throw QueueError(qq::format, "bytes after the end of the envelope");
    return e;
}

// ---- the Received line ----

std::string rfc822_date(std::time_t when) {
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    // UTC by arithmetic: gmtime_r would read /etc/localtime first (glibc), in every qmail-smtpd
    using namespace std::chrono;
    const sys_seconds at{seconds{when}};
    const auto day = floor<days>(at);
    const year_month_day ymd{day};
    const hh_mm_ss<seconds> hms{at - day};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%u %s %d %02d:%02d:%02d -0000", static_cast<unsigned>(ymd.day()),
                  months[static_cast<unsigned>(ymd.month()) - 1], static_cast<int>(ymd.year()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

namespace {

std::optional<uid_t> uid_of(const char* user) {
    if (struct passwd* pw = ::getpwnam(user)) return pw->pw_uid;
    return std::nullopt;
}

}  // namespace

std::string queue_received_line(pid_t pid, uid_t uid, std::time_t when) {
    static const std::optional<uid_t> alias = uid_of("alias"), qmaild = uid_of("qmaild"), qmails = uid_of("qmails");
    std::string who;
    if (alias && uid == *alias)
        who = "by alias";
    else if (qmaild && uid == *qmaild)
        who = "from network";
    else if (qmails && uid == *qmails)
        who = "for bounce";
    else
        who = "by uid " + std::to_string(uid);
    return "Received: (qmail " + std::to_string(pid) + " invoked " + who + "); " + rfc822_date(when) + "\n";
}

// ---- writing a message ----

namespace {

[[noreturn]] void fail(int code, const std::string& what, const fs::path& path, int err) {
    throw QueueError(code, what + " " + path.string() + ": " + std::strerror(err));
}

void write_all(int fd, std::string_view data, const fs::path& path) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail(qq::write_error, "cannot write", path, errno);
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::atomic<std::uint64_t> g_pid_sequence{0};

}  // namespace

void sync_dir(const fs::path& dir, int code) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail(code, "cannot open", dir, errno);
    if (::fsync(fd) != 0) {
        int e = errno;
        ::close(fd);
        fail(code, "cannot flush", dir, e);
    }
    ::close(fd);
}

void pull_trigger(const QueueDirs& dirs, const std::vector<std::uint64_t>& numbers) noexcept {
    int fd = ::open(dirs.trigger().c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;  // nobody reads it: qmail-send will find todo/ on its next scan
    if (numbers.empty()) {
        [[maybe_unused]] ssize_t n = ::write(fd, "", 1);
    } else {
        char chunk[kTriggerChunk];
        std::size_t used = 0;
        auto flush = [&] {
            [[maybe_unused]] ssize_t n = ::write(fd, chunk, used);  // <= PIPE_BUF: all of it or nothing
            used = 0;
        };
        for (std::uint64_t n : numbers) {
            char rec[24];
            auto [end, ec] = std::to_chars(rec, rec + sizeof rec - 1, n);
            *end++ = '\n';
            std::size_t len = static_cast<std::size_t>(end - rec);
            if (used + len > sizeof chunk) flush();
            std::memcpy(chunk + used, rec, len);
            used += len;
        }
        if (used) flush();
    }
    ::close(fd);
}

TriggerReader::TriggerReader(int fd) : fd_(fd) {
    int cap = ::fcntl(fd, F_GETPIPE_SZ);
    if (cap <= 0) throw Error(Exit::ioerr, std::string("cannot read the trigger's capacity: ") + std::strerror(errno));
    capacity_ = static_cast<std::size_t>(cap);
}

TriggerReader::News TriggerReader::drain() {
    News news;
    std::size_t total = 0;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        total += static_cast<std::size_t>(n);
        partial_.append(buf, static_cast<std::size_t>(n));
    }
    // Full, or nearly (less room than a writer's chunk): a write may have failed, its records lost.
    if (total + kTriggerChunk > capacity_) news.scan = true;
    std::size_t at = 0;
    for (;;) {
        std::size_t nl = partial_.find('\n', at);
        std::size_t nul = partial_.find('\0', at);
        if (nul < nl) {  // qmail's byte (its writers write nothing else)
            news.scan = true;
            at = nul + 1;
            continue;
        }
        if (nl == std::string::npos) break;
        if (auto v = parse_decimal(std::string_view(partial_).substr(at, nl - at)))
            news.numbers.push_back(*v);
        else
            news.scan = true;
        at = nl + 1;
    }
    partial_.erase(0, at);
    if (partial_.size() > 32) {  // no record is that long: not ours
        news.scan = true;
        partial_.clear();
    }
    return news;
}

// ---- the pool of finished messages' files ----

namespace {

// The numeric names in a queue directory (at most `limit` of them); none when it does not exist.
std::vector<std::uint64_t> numbers_in(const fs::path& dir, std::size_t limit = SIZE_MAX) {
    std::vector<std::uint64_t> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) {
        int e = errno;
        if (e == ENOENT) return out;
        throw sys_error(exit_for_read_errno(e), "cannot read", dir, e);
    }
    while (struct dirent* ent = ::readdir(d)) {
        std::string_view name = ent->d_name;
        std::uint64_t n = 0;
        auto r = std::from_chars(name.data(), name.data() + name.size(), n);
        if (r.ec == std::errc() && r.ptr == name.data() + name.size()) out.push_back(n);
        if (out.size() >= limit) break;
    }
    ::closedir(d);
    return out;
}

std::timespec coarse_now() noexcept {
    std::timespec t{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &t);  // the clock the kernel stamps ctime with
    return t;
}

bool before(const std::timespec& a, const std::timespec& b) noexcept {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

}  // namespace

QueuePool::QueuePool(const QueueDirs& dirs) : dirs_(dirs), owner_(::geteuid()) {}

void QueuePool::flush_starting() noexcept {
    std::lock_guard<std::mutex> g(mu_);
    flush_started_ = coarse_now();
}

void QueuePool::flush_done() noexcept {
    std::lock_guard<std::mutex> g(mu_);
    safe_before_ = flush_started_;
}

void QueuePool::refill() {
    // only once a flush has finished since the last look: before that, no file more may be taken
    if (refilled_ && !before(refilled_at_, safe_before_)) return;
    refilled_ = true;
    refilled_at_ = safe_before_;
    try {
        names_ = numbers_in(dirs_.pool(), kPoolMax);
    } catch (const Error&) {  // unreadable: the writers make new files
    }
}

std::optional<PooledFile> QueuePool::take(const std::function<fs::path(std::uint64_t)>& where) {
    for (;;) {
        std::uint64_t n;
        std::timespec safe;
        {
            std::lock_guard<std::mutex> g(mu_);
            if (names_.empty()) refill();
            if (names_.empty()) return std::nullopt;
            n = names_.back();
            names_.pop_back();
            safe = safe_before_;
        }
        fs::path from = dirs_.pool() / std::to_string(n);
        int fd = ::open(from.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;  // taken meanwhile
        struct stat st {};
        // its name is its inode; ours, with no other name; in the pool since before a finished flush
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != n || st.st_nlink != 1 ||
            st.st_uid != owner_ || !before(st.st_ctim, safe)) {
            ::close(fd);
            continue;  // found again at a later refill, when it may be ready
        }
        fs::path to = where(n);
        // the rename makes it ours alone: another thread that opened it too fails here
        if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0) {
            int e = errno;
            ::close(fd);
            if (e == ENOENT) continue;
            return std::nullopt;  // the caller's own way of making the file reports what is wrong there
        }
        if (::futimens(fd, nullptr) != 0) {
            ::unlink(to.c_str());
            ::close(fd);
            return std::nullopt;
        }
        std::lock_guard<std::mutex> g(mu_);
        ++taken_;
        return PooledFile{fd, n};
    }
}

std::uint64_t QueuePool::taken() const {
    std::lock_guard<std::mutex> g(mu_);
    return taken_;
}

QueueRecycler::QueueRecycler(const QueueDirs& dirs) : dirs_(dirs) {
    count();
}

void QueueRecycler::count() {
    since_count_ = 0;
    in_pool_ = 0;
    struct stat st {};
    pool_ = ::stat(dirs_.pool().c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    if (!pool_) return;
    pool_owner_ = st.st_uid;
    try {
        in_pool_ = numbers_in(dirs_.pool(), kPoolMax).size();
    } catch (const Error&) {
        pool_ = false;
    }
}

void QueueRecycler::remove(const fs::path& p) noexcept {
    // counted again only when it seems full (the writer takes files meanwhile, so the count is high, never
    // low) or missing (the writer may have made it since): listing it each time costs more than it saves
    if (++since_count_ >= 256 && (!pool_ || in_pool_ >= kPoolMax)) count();
    struct stat st {};
    if (pool_ && in_pool_ < kPoolMax && ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
        st.st_uid == pool_owner_ && st.st_size <= kPoolFileMax) {
        fs::path to = dirs_.pool() / std::to_string(static_cast<std::uint64_t>(st.st_ino));
        if (::renameat2(AT_FDCWD, p.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
            ++in_pool_;
            ++recycled_;
            return;
        }
    }
    ::unlink(p.c_str());
}

// ---- writing a message ----

QueueInjection::QueueInjection(const QueueDirs& dirs, QueuePool* pool) : dirs_(dirs), pool_(pool) {
    buf_.reserve(65536);
    if (pool_) {
        if (auto f = pool_->take([this](std::uint64_t n) { return dirs_.mess(n); })) {
            mess_fd_ = f->fd;
            number_ = f->number;
            mess_pooled_ = true;
            return;
        }
    }
    fs::path piddir = dirs_.root() / "pid";
    fs::path pidfn;
    for (int attempt = 0;; ++attempt) {
        pidfn = piddir / (std::to_string(::getpid()) + "." + std::to_string(std::time(nullptr)) + "." +
                          std::to_string(++g_pid_sequence));
        mess_fd_ = ::open(pidfn.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (mess_fd_ >= 0) break;
        int e = errno;
        if (e == EEXIST && attempt < 9) continue;
        struct stat st {};
        fail(::stat(dirs_.root().c_str(), &st) != 0 ? qq::queue_dir : qq::pid, "cannot create", pidfn, e);
    }
    struct stat st {};
    if (::fstat(mess_fd_, &st) != 0) {
        int e = errno;
        ::unlink(pidfn.c_str());
        ::close(mess_fd_);
        mess_fd_ = -1;
        fail(qq::pid, "cannot look at", pidfn, e);
    }
    number_ = static_cast<std::uint64_t>(st.st_ino);
    fs::path messfn = dirs_.mess(number_);
    if (::link(pidfn.c_str(), messfn.c_str()) != 0) {
        int e = errno;
        ::unlink(pidfn.c_str());
        ::close(mess_fd_);
        mess_fd_ = -1;
        fail(qq::mess, "cannot link", messfn, e);
    }
    ::unlink(pidfn.c_str());
}

QueueInjection::~QueueInjection() {
    abandon();
}

void QueueInjection::flush_buffer() {
    write_all(mess_fd_, buf_, dirs_.mess(number_));
    buf_.clear();
}

void QueueInjection::write(std::string_view data) {
    size_ += data.size();
    if (buf_.size() + data.size() > 65536) {
        flush_buffer();
        if (data.size() > 65536) {
            write_all(mess_fd_, data, dirs_.mess(number_));
            return;
        }
    }
    buf_.append(data);
}

void QueueInjection::write_envelope(uid_t uid, pid_t pid, const Envelope& e) {
    flush_buffer();
    if (mess_pooled_ && ::ftruncate(mess_fd_, static_cast<off_t>(size_)) != 0)
        fail(qq::write_error, "cannot truncate", dirs_.mess(number_), errno);
    fs::path intdfn = dirs_.intd(number_);
    if (pool_)
        if (auto f = pool_->take([&](std::uint64_t) { return intdfn; })) {
            intd_fd_ = f->fd;
            intd_pooled_ = true;
        }
    if (intd_fd_ < 0) intd_fd_ = ::open(intdfn.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (intd_fd_ < 0 && errno == EEXIST) {
        // A leftover of an earlier message N (its sender died between removing todo/N and intd/N): that
        // message is gone, since mess/N, whose inode is N, is ours now. It goes, and ours takes its place.
        ::unlink(intdfn.c_str());
        intd_fd_ = ::open(intdfn.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (intd_fd_ < 0) fail(qq::intd, "cannot create", intdfn, errno);
    std::string s = "u" + std::to_string(uid);
    s += '\0';
    s += "p" + std::to_string(pid);
    s += '\0';
    std::string env = format_envelope(e);
    s.append(env, 0, env.size() - 1);  // the envelope without its final \0, as qmail-queue writes it
    write_all(intd_fd_, s, intdfn);
    if (intd_pooled_ && ::ftruncate(intd_fd_, static_cast<off_t>(s.size())) != 0)
        fail(qq::write_error, "cannot truncate", intdfn, errno);
}

int QueueInjection::commit_alone() {
    if (intd_fd_ < 0) throw QueueError(qq::bug, "commit before the envelope");
    if (::fsync(mess_fd_) != 0) fail(qq::write_error, "cannot flush", dirs_.mess(number_), errno);
    sync_dir(dirs_.mess(number_).parent_path(), qq::mess);
    if (::fsync(intd_fd_) != 0) fail(qq::write_error, "cannot flush", dirs_.intd(number_), errno);
    sync_dir(dirs_.root() / "intd", qq::intd);
    link_todo();
    sync_dir(dirs_.root() / "todo", qq::todo);
    pull_trigger(dirs_, {number_});
    return 5;
}

void QueueInjection::check_written() {
    // the data is on disk already: this waits for nothing and writes nothing, it only collects the
    // file's writeback error, if any, since it was opened
    constexpr unsigned kWait = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    if (::sync_file_range(mess_fd_, 0, 0, kWait) != 0) fail(qq::write_error, "cannot write", dirs_.mess(number_), errno);
    if (::sync_file_range(intd_fd_, 0, 0, kWait) != 0) fail(qq::write_error, "cannot write", dirs_.intd(number_), errno);
}

void QueueInjection::link_todo() {
    if (intd_fd_ < 0) throw QueueError(qq::bug, "commit before the envelope");
    fs::path intdfn = dirs_.intd(number_), todofn = dirs_.todo(number_);
    if (::link(intdfn.c_str(), todofn.c_str()) != 0) fail(qq::todo, "cannot link", todofn, errno);
    committed_ = true;
    ::close(intd_fd_);
    ::close(mess_fd_);
    intd_fd_ = mess_fd_ = -1;
}

void QueueInjection::abandon() noexcept {
    if (committed_) return;
    if (intd_fd_ >= 0) {
        [[maybe_unused]] int r = ::ftruncate(intd_fd_, 0);
        ::unlink(dirs_.intd(number_).c_str());
        ::close(intd_fd_);
        intd_fd_ = -1;
    }
    if (mess_fd_ >= 0) {
        [[maybe_unused]] int r = ::ftruncate(mess_fd_, 0);
        ::unlink(dirs_.mess(number_).c_str());
        ::close(mess_fd_);
        mess_fd_ = -1;
    }
    committed_ = true;  // nothing left to abandon
}

// ---- reading the queue ----

const char* state_name(QueuedMessage::State s) noexcept {
    switch (s) {
        case QueuedMessage::todo:
            return "todo";
        case QueuedMessage::preprocessed:
            return "preprocessed";
        case QueuedMessage::incomplete:
            return "incomplete";
    }
    return "?";
}

namespace {

// The whole of a small queue file; nullopt when it does not exist (any more).
std::optional<std::string> read_queue_file(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) return std::nullopt;
        throw sys_error(exit_for_read_errno(e), "cannot open", p, e);
    }
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            throw sys_error(Exit::ioerr, "cannot read", p, e);
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

// The NUL-terminated fields of a queue file (an unterminated tail counts as one).
std::vector<std::string_view> fields(std::string_view s) {
    std::vector<std::string_view> out;
    while (!s.empty()) {
        std::size_t nul = s.find('\0');
        out.push_back(s.substr(0, nul));
        if (nul == std::string_view::npos) break;
        s.remove_prefix(nul + 1);
    }
    return out;
}

void read_envelope_file(std::string_view text, QueuedMessage& m) {
    for (auto f : fields(text)) {
        if (f.empty()) continue;
        if (f[0] == 'F') m.sender = f.substr(1);
        if (f[0] == 'T') m.recipients.push_back({std::string(f.substr(1)), false, false});
    }
}

void read_recipient_file(std::string_view text, bool remote, QueuedMessage& m) {
    for (auto f : fields(text))
        if (!f.empty() && (f[0] == 'T' || f[0] == 'D'))
            m.recipients.push_back({std::string(f.substr(1)), f[0] == 'D', remote});
}

}  // namespace

std::vector<QueuedMessage> scan_queue(const QueueDirs& dirs, const ProgressFn& progress) {
    if (!path_exists(dirs.root() / "mess"))
        throw Error(Exit::noinput, "no queue at " + dirs.root().string() + " (qmailctl queue init makes one)");
    std::vector<std::uint64_t> numbers;
    for (int i = 0; i < dirs.split(); ++i)
        for (std::uint64_t n : numbers_in(dirs.root() / "mess" / std::to_string(i))) numbers.push_back(n);
    std::vector<QueuedMessage> out;
    for (std::size_t done = 0; done < numbers.size(); ++done) {
        if (progress && done % 256 == 0) progress(done, numbers.size());
        const std::uint64_t n = numbers[done];
        QueuedMessage m;
        m.number = n;
        struct stat st {};
        if (::stat(dirs.mess(n).c_str(), &st) != 0) continue;  // delivered meanwhile
        m.size = static_cast<std::uint64_t>(st.st_size);
        m.time = st.st_mtime;
        if (auto todo = read_queue_file(dirs.todo(n))) {
            m.state = QueuedMessage::todo;
            read_envelope_file(*todo, m);
        } else if (auto info = read_queue_file(dirs.info(n))) {
            m.state = QueuedMessage::preprocessed;
            read_envelope_file(*info, m);
            if (auto l = read_queue_file(dirs.local(n))) read_recipient_file(*l, false, m);
            if (auto r = read_queue_file(dirs.remote(n))) read_recipient_file(*r, true, m);
        } else {
            m.state = QueuedMessage::incomplete;
            if (auto intd = read_queue_file(dirs.intd(n))) read_envelope_file(*intd, m);
        }
        out.push_back(std::move(m));
    }
    std::sort(out.begin(), out.end(), [](const QueuedMessage& a, const QueuedMessage& b) {
        return a.time != b.time ? a.time < b.time : a.number < b.number;
    });
    return out;
}

// ---- qmailctl queue init ----

QueueOwners queue_owners() {
    QueueOwners o;
    Owner self{::geteuid(), ::getegid()};
    o.q = o.s = o.r = self;
    if (::geteuid() != 0) return o;
    gid_t group = self.gid;
    if (struct group* g = ::getgrnam("qmail"))
        group = g->gr_gid;
    else
        o.missing.push_back("group qmail");
    auto user = [&](const char* name, Owner& to) {
        if (struct passwd* pw = ::getpwnam(name))
            to = Owner{pw->pw_uid, group};
        else {
            to = Owner{self.uid, group};
            o.missing.push_back(std::string("user ") + name);
        }
    };
    user("qmailq", o.q);
    user("qmails", o.s);
    user("qmailr", o.r);
    return o;
}

namespace {

std::string mode_text(mode_t m) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

// chmod of the name itself: a symbolic link put in its place since it was looked at is refused
int set_mode(const fs::path& path, mode_t mode) {
    return ::fchmodat(AT_FDCWD, path.c_str(), mode, AT_SYMLINK_NOFOLLOW);
}

// Makes `path` (a directory, a FIFO or a file of `size` zero bytes) with `mode` and `owner`, or puts
// right the mode and owner of what is there.
void ensure(const fs::path& path, char kind, mode_t mode, Owner owner, std::size_t size, bool dry_run,
            std::vector<std::string>& steps) {
    struct stat st {};
    std::string what = kind == 'd' ? "directory" : kind == 'p' ? "FIFO" : "file";
    if (::lstat(path.c_str(), &st) != 0) {
        int e = errno;
        if (e != ENOENT) throw sys_error(Exit::cantcreat, "cannot look up", path, e);
        steps.push_back("create " + what + " " + path.string() + " (mode " + mode_text(mode) + ", uid " +
                        std::to_string(owner.uid) + ", gid " + std::to_string(owner.gid) + ")");
        if (dry_run) return;
        int r = 0;
        if (kind == 'd') {
            r = ::mkdir(path.c_str(), mode);
        } else if (kind == 'p') {
            r = ::mkfifo(path.c_str(), mode);
        } else {
            int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
            r = fd < 0 ? -1 : 0;
            if (fd >= 0) {
                std::string zeros(size, '\0');
                if (!zeros.empty() && ::write(fd, zeros.data(), zeros.size()) != static_cast<ssize_t>(zeros.size())) r = -1;
                ::close(fd);
            }
        }
        if (r != 0) throw sys_error(errno == EACCES || errno == EPERM ? Exit::noperm : Exit::cantcreat,
                                    "cannot create", path, errno);
        if (set_mode(path, mode) != 0) throw sys_error(Exit::cantcreat, "cannot set the mode of", path, errno);
        give_to(-1, path, owner);
        return;
    }
    bool right_kind = kind == 'd' ? S_ISDIR(st.st_mode) : kind == 'p' ? S_ISFIFO(st.st_mode) : S_ISREG(st.st_mode);
    if (!right_kind) throw Error(Exit::cantcreat, path.string() + " exists and is not a " + what);
    if ((st.st_mode & 07777) != mode) {
        steps.push_back("set the mode of " + path.string() + " to " + mode_text(mode) + " (was " +
                        mode_text(st.st_mode) + ")");
        if (!dry_run && set_mode(path, mode) != 0)
            throw sys_error(errno == EPERM ? Exit::noperm : Exit::cantcreat, "cannot set the mode of", path, errno);
    }
    if (st.st_uid != owner.uid || st.st_gid != owner.gid) {
        steps.push_back("give " + path.string() + " to uid " + std::to_string(owner.uid) + ", gid " +
                        std::to_string(owner.gid) + " (was " + std::to_string(st.st_uid) + ":" +
                        std::to_string(st.st_gid) + ")");
        if (!dry_run) give_to(-1, path, owner);
    }
}

}  // namespace

std::vector<std::string> init_queue(const QueueDirs& dirs, const QueueOwners& o, bool dry_run) {
    std::vector<std::string> steps;
    const fs::path& q = dirs.root();
    if (!q.parent_path().empty() && !path_exists(q.parent_path()))
        throw Error(Exit::cantcreat, "cannot create the queue: " + q.parent_path().string() + " does not exist");
    ensure(q, 'd', 0750, o.q, 0, dry_run, steps);
    ensure(q / "pid", 'd', 0700, o.q, 0, dry_run, steps);
    ensure(q / "pool", 'd', 0700, o.q, 0, dry_run, steps);
    ensure(q / "intd", 'd', 0700, o.q, 0, dry_run, steps);
    ensure(q / "todo", 'd', 0750, o.q, 0, dry_run, steps);
    ensure(q / "bounce", 'd', 0700, o.s, 0, dry_run, steps);
    for (auto [name, owner, mode] : {std::tuple{"mess", o.q, 0750}, std::tuple{"info", o.s, 0700},
                                     std::tuple{"local", o.s, 0700}, std::tuple{"remote", o.s, 0700}}) {
        ensure(q / name, 'd', static_cast<mode_t>(mode), owner, 0, dry_run, steps);
        for (int i = 0; i < dirs.split(); ++i)
            ensure(q / name / std::to_string(i), 'd', static_cast<mode_t>(mode), owner, 0, dry_run, steps);
    }
    ensure(q / "lock", 'd', 0750, o.q, 0, dry_run, steps);
    ensure(q / "lock" / "tcpto", 'f', 0644, o.r, 1024, dry_run, steps);
    ensure(q / "lock" / "sendmutex", 'f', 0600, o.s, 0, dry_run, steps);
    ensure(q / "lock" / "trigger", 'p', 0622, o.s, 0, dry_run, steps);
    return steps;
}

std::optional<pid_t> running_qmail_send(const QueueDirs& dirs) {
    fs::path p = dirs.root() / "lock" / "sendmutex";
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw sys_error(exit_for_read_errno(errno), "cannot open", p, errno);
    }
    if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {  // nobody holds it: no qmail-send
        ::close(fd);
        return std::nullopt;
    }
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    long pid = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
    if (pid <= 0) return std::nullopt;
    return static_cast<pid_t>(pid);
}

}  // namespace qv
