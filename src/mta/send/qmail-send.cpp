// qmail-send - deliver what the queue holds. See qmail-send(8).
//
// One process over notqmail's queue layout. The main thread watches lock/trigger and todo/, preprocesses
// new messages (info/N, local/N, remote/N, as qmail-send writes them, made durable with one flush for
// all the messages of a scan before todo/N goes), schedules each recipient on the local or the remote
// channel within control/concurrencylocal and control/concurrencyremote, marks each recipient done (a
// 'D' written over its 'T') once delivered or bounced, and removes the message when nothing is left.
//
// Delivery threads do the work. Local: for a virtual domain (users/assign), the library's delivery
// (vdelivermail and vfilter's) runs in-process, as the domain's owner (setfsuid), with the Maildir
// writes of concurrent deliveries made durable together (a group commit); QMAILLOCAL names a program
// to run instead, with qmail-local's arguments. Remote: qmail-remote (or QMAILREMOTE) with IndiMail's
// arguments, one recipient per run, its report folded as qmail-rspawn does.
//
// Temporary failures are retried on qmail's schedule (birth + (sqrt(age) + 10 or 20)^2); after
// control/queuelifetime a temporary failure is permanent. Permanent failures go to bounce/N and, when
// the message is done, into one QSBMF bounce to the sender (double bounce to postmaster, triple
// dropped), through BOUNCEPROCESSOR, bounce.envrules and BOUNCEQUEUE.
//
// Signals: TERM finishes the deliveries under way and exits; HUP re-reads the control files; ALRM retries
// every deferred recipient now (qmailctl queue flush).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "qvmail/assign.hpp"
#include "qvmail/bounce.hpp"
#include "qvmail/control.hpp"
#include "qvmail/envrules.hpp"
#include "qvmail/error.hpp"
#include "qvmail/group_sync.hpp"
#include "qvmail/local_delivery.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/process.hpp"
#include "qvmail/queue.hpp"
#include "qvmail/queue_client.hpp"
#include "qvmail/remote.hpp"
#include "qvmail/service.hpp"
#include "qvmail/store.hpp"
#include "qvmail/text.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using qv::DeliveryOutcome;

using Clock = std::chrono::steady_clock;
constexpr std::time_t kRescan = 1500;         // todo/ is scanned this often without a trigger
constexpr auto kTriggerGap = std::chrono::milliseconds(20);  // and at most this often with triggers
constexpr std::time_t kCleanEvery = 76431;    // and leftovers looked for this often (qmail's figures)
constexpr std::time_t kOssified = 129600;     // a leftover older than 36 hours goes
constexpr int kProgramTimeout = 86400;        // a delivery program is killed after a day
constexpr std::size_t kMaxConcurrency = 500;  // qmail's limit on either channel

enum Channel { kLocal = 0, kRemote = 1 };
const char* channel_name(int c) {
    return c == kLocal ? "local" : "remote";
}

volatile sig_atomic_t g_term = 0, g_hup = 0, g_alrm = 0;
int g_wake_w = -1, g_wake_r = -1;  // the self-pipe: signals and finished deliveries wake the main loop

void wake() {
    char c = 0;
    [[maybe_unused]] ssize_t n = ::write(g_wake_w, &c, 1);
}

void on_signal(int sig) {
    int saved = errno;
    if (sig == SIGTERM) g_term = 1;
    if (sig == SIGHUP) g_hup = 1;
    if (sig == SIGALRM) g_alrm = 1;
    wake();
    errno = saved;
}

// Log lines gather and go out in one write per pass of the main loop (before it waits), not one write
// each: four lines a message, at hundreds of messages a second.
std::mutex g_log_mu;
std::string g_log;
void log_flush() {
    std::lock_guard<std::mutex> g(g_log_mu);
    std::string_view left = g_log;
    while (!left.empty()) {
        ssize_t n = ::write(1, left.data(), left.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // a log that cannot be written loses its lines, never the mail
        left.remove_prefix(static_cast<std::size_t>(n));
    }
    g_log.clear();
}
void log_line(const std::string& s) {
    bool full;
    {
        std::lock_guard<std::mutex> g(g_log_mu);
        g_log += s;
        g_log += '\n';
        full = g_log.size() >= 65536;
    }
    if (full) log_flush();
}

// Log text on one line: line ends become '/', other control bytes '?' (as qmail-send's logs).
std::string one_line(std::string_view s) {
    while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
    std::string out;
    for (char c : s) out += c == '\n' ? '/' : (static_cast<unsigned char>(c) < 32 ? '?' : c);
    return out;
}

// ---- the control files ----
struct Controls {
    std::string me, envnoathost;
    std::set<std::string> locals;
    std::map<std::string, std::string> virtualdomains;  // address, domain, .suffix or "" -> prefix
    std::size_t concurrency[2] = {10, 20};
    std::time_t queuelifetime = 604800;
};

Controls load_controls(const qv::Paths& p) {
    Controls c;
    c.me = qv::ascii_lower(qv::control_first_line(p, "me").value_or("localhost"));
    c.envnoathost = qv::ascii_lower(qv::control_first_line(p, "envnoathost").value_or(c.me));
    auto locals = qv::ControlFile::load(p.control("locals"));
    if (!locals.exists()) c.locals.insert(c.me);
    for (const auto& l : locals.entries()) c.locals.insert(qv::ascii_lower(l));
    for (const auto& l : qv::ControlFile::load(p.control("virtualdomains")).entries()) {
        auto colon = l.find(':');
        if (colon == std::string::npos) continue;
        c.virtualdomains[qv::ascii_lower(l.substr(0, colon))] = l.substr(colon + 1);
    }
    c.concurrency[kLocal] = std::clamp<std::uint64_t>(qv::control_number(p, "concurrencylocal", 10), 1, kMaxConcurrency);
    c.concurrency[kRemote] = std::clamp<std::uint64_t>(qv::control_number(p, "concurrencyremote", 20), 1, kMaxConcurrency);
    c.queuelifetime = static_cast<std::time_t>(std::min<std::uint64_t>(qv::control_number(p, "queuelifetime", 604800),
                                                                       10ull * 365 * 86400));
    return c;
}

// qmail-send's rewrite: which channel, and the address the channel gets.
std::pair<int, std::string> rewrite(const Controls& c, std::string addr) {
    auto at = addr.rfind('@');
    if (at == std::string::npos) {
        addr += "@" + c.envnoathost;
        at = addr.rfind('@');
    }
    std::string domain = qv::ascii_lower(addr.substr(at + 1));
    addr = addr.substr(0, at + 1) + domain;
    if (c.locals.count(domain)) return {kLocal, addr};
    auto prefix = [&](const std::string& key) -> std::optional<std::string> {
        auto it = c.virtualdomains.find(key);
        if (it == c.virtualdomains.end()) return std::nullopt;
        return it->second;
    };
    std::optional<std::string> p = prefix(qv::ascii_lower(addr));
    if (!p) p = prefix(domain);
    for (std::size_t dot = domain.find('.'); !p && dot != std::string::npos; dot = domain.find('.', dot + 1))
        p = prefix(domain.substr(dot));
    if (!p) p = prefix("");
    if (p && !p->empty()) return {kLocal, *p + "-" + addr};
    return {kRemote, addr};
}

// The address a local recipient had before rewrite() put its virtual domain's prefix before it.
std::string original_address(const Controls& c, const std::string& addr) {
    auto at = addr.rfind('@');
    if (at == std::string::npos) return addr;
    std::string domain = addr.substr(at + 1);
    for (const auto& [key, prefix] : c.virtualdomains) {
        if (prefix.empty() || !addr.starts_with(prefix + "-")) continue;
        if (key == domain || key.empty() || (key.starts_with('.') && domain.ends_with(key)))
            return addr.substr(prefix.size() + 1);
    }
    return addr;
}

// qmail's retry schedule: the next attempt after `now` for a message born at `birth`.
std::time_t next_retry(std::time_t birth, std::time_t now, int channel) {
    const std::time_t skip = channel == kLocal ? 10 : 20;
    std::time_t age = std::max<std::time_t>(0, now - birth);
    auto root = static_cast<std::time_t>(std::sqrt(static_cast<double>(age)));
    while ((root + 1) * (root + 1) <= age) ++root;
    while (root * root > age) --root;
    return birth + (root + skip) * (root + skip);
}

// ---- the queue, in memory ----
struct Rcpt {
    std::string addr;
    off_t offset = 0;  // of its 'T' in local/N or remote/N
    bool done = false;
    bool busy = false;
    std::time_t next = 0;
};

struct Job {
    std::uint64_t n = 0;
    std::string sender;
    std::time_t birth = 0;
    std::vector<Rcpt> rc[2];
    int busy = 0;
    bool fast = false;  // delivered straight from todo/N: no info/, local/, remote/ files
    bool finished() const {
        for (const auto& v : rc)
            for (const auto& r : v)
                if (!r.done) return false;
        return busy == 0;
    }
};

struct Task {
    int channel;
    std::uint64_t n;
    std::size_t index;
    std::string addr, sender;
    fs::path mess;
    bool dying;
    std::uint64_t id;  // the delivery's number in the log
};

struct Result {
    Task task;
    DeliveryOutcome outcome;
    double seconds;
    std::vector<fs::path> unsynced;  // Maildirs whose new names must be flushed before it counts
    enum Event { done, slot_free, done_slot_freed } event = done;  // slot_free: the thread is free, the
                                                                   // delivery not yet durable
};

// Flushes the new names of finished deliveries (a group commit with the deliveries under way) and only
// then reports them: a delivery thread need not wait for that second flush, and takes its next task.
class NameSyncer {
public:
    NameSyncer(qv::GroupSync& group, std::mutex& results_mu, std::vector<Result>& results)
        : group_(group), results_mu_(results_mu), results_(results), thread_([this] { run(); }) {}
    ~NameSyncer() {
        {
            std::lock_guard<std::mutex> g(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    void submit(Result r) {
        {
            std::lock_guard<std::mutex> g(mu_);
            pending_.push_back(std::move(r));
        }
        cv_.notify_one();
    }

private:
    void run() {
        std::unique_lock<std::mutex> g(mu_);
        for (;;) {
            cv_.wait(g, [&] { return stop_ || !pending_.empty(); });
            if (pending_.empty()) return;
            std::vector<Result> batch;
            batch.swap(pending_);
            g.unlock();
            // one flush for each Maildir of the batch covers all its deliveries (not one each: every
            // sync() waits for a flush that starts after it is called)
            std::set<fs::path> maildirs;
            std::map<fs::path, std::string> failed;
            for (auto& r : batch)
                for (const auto& p : r.unsynced)
                    if (maildirs.insert(p).second) try {
                            group_.sync(p);
                        } catch (const std::exception& e) {
                            failed[p] = e.what();
                        }
            for (auto& r : batch) {
                for (const auto& p : r.unsynced)
                    if (auto f = failed.find(p); f != failed.end() && r.outcome.kind == DeliveryOutcome::success)
                        r.outcome = {DeliveryOutcome::temporary, f->second + " (#4.3.0)"};
                r.event = Result::done_slot_freed;
            }
            {
                std::lock_guard<std::mutex> rg(results_mu_);
                for (auto& r : batch) results_.push_back(std::move(r));
            }
            wake();
            g.lock();
        }
    }
    qv::GroupSync& group_;
    std::mutex& results_mu_;
    std::vector<Result>& results_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Result> pending_;
    bool stop_ = false;
    std::thread thread_;
};

// Reads a queue file's NUL-terminated fields: the letter and the rest, with each field's offset.
struct Field {
    char letter;
    std::string value;
    off_t offset;
};
std::optional<std::vector<Field>> read_fields(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;  // errno says why
    std::string data;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        data.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    std::vector<Field> out;
    std::size_t at = 0;
    while (at < data.size()) {
        std::size_t end = data.find('\0', at);
        if (end == std::string::npos) break;  // a field cut short is not one
        out.push_back({data[at], data.substr(at + 1, end - at - 1), static_cast<off_t>(at)});
        at = end + 1;
    }
    return out;
}

std::optional<std::uint64_t> number_name(const std::string& s) {
    return qv::parse_decimal(s);
}

// ---- the delivery threads ----
class Pool {
public:
    using Work = std::function<Result(const Task&)>;
    Pool(Work work, std::mutex& results_mu, std::vector<Result>& results, NameSyncer* syncer = nullptr)
        : work_(std::move(work)), results_mu_(results_mu), results_(results), syncer_(syncer) {}
    ~Pool() {
        {
            std::lock_guard<std::mutex> g(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    void submit(Task t) {
        {
            std::lock_guard<std::mutex> g(mu_);
            tasks_.push_back(std::move(t));
            if (tasks_.size() > idle_ && threads_.size() < kMaxConcurrency) {
                try {
                    threads_.emplace_back([this] { run(); });
                } catch (const std::exception& e) {  // the task waits for a thread that exists
                    log_line(std::string("warning: cannot start a delivery thread: ") + e.what());
                }
            }
        }
        cv_.notify_one();
    }

private:
    void run() {
        std::unique_lock<std::mutex> g(mu_);
        for (;;) {
            ++idle_;
            cv_.wait(g, [&] { return stop_ || !tasks_.empty(); });
            --idle_;
            if (tasks_.empty()) return;
            Task t = std::move(tasks_.front());
            tasks_.pop_front();
            g.unlock();
            Result r{t, {DeliveryOutcome::temporary, ""}, 0, {}, Result::done};
            try {
                r = work_(t);
            } catch (const std::exception& e) {
                r.outcome.text = std::string("internal error: ") + e.what() + " (#4.3.0)";
            }
            {
                std::lock_guard<std::mutex> rg(results_mu_);
                if (syncer_ && !r.unsynced.empty()) {  // this thread is free; the result comes later
                    Result slot{r.task, {}, 0, {}, Result::slot_free};
                    results_.push_back(std::move(slot));
                    syncer_->submit(std::move(r));
                } else {
                    results_.push_back(std::move(r));
                }
            }
            wake();
            g.lock();
        }
    }
    Work work_;
    std::mutex& results_mu_;
    std::vector<Result>& results_;
    NameSyncer* syncer_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Task> tasks_;
    std::vector<std::thread> threads_;
    std::size_t idle_ = 0;
    bool stop_ = false;
};

class Sender {
public:
    Sender(qv::Paths paths) : paths_(std::move(paths)), dirs_(paths_.queuedir) {
        controls_ = load_controls(paths_);
        local_program_ = getenv_str("QMAILLOCAL");
        remote_program_ = getenv_str("QMAILREMOTE").value_or(qv::mta_program(paths_, "qmail-remote").string());
        qv::QueueOwners owners = qv::queue_owners();
        remote_owner_ = owners.r;
        send_owner_ = owners.s;
        syncer_ = std::make_unique<NameSyncer>(group_, results_mu_, results_);
        pools_[kLocal] = std::make_unique<Pool>([this](const Task& t) { return deliver_local(t); }, results_mu_, results_,
                                                syncer_.get());
        pools_[kRemote] = std::make_unique<Pool>([this](const Task& t) { return deliver_remote(t); }, results_mu_, results_);
    }

    int run();

private:
    static std::optional<std::string> getenv_str(const char* name) {
        const char* v = std::getenv(name);
        if (!v || !*v) return std::nullopt;
        return std::string(v);
    }

    void load_info();
    void scan_todo();
    void take_new(std::vector<std::uint64_t> found, bool named);
    void write_preprocessed(Job& j);
    void discard_preprocessed(std::uint64_t n, bool bounce);
    bool leave_fast_path(Job& j);
    void cleanup();
    void add_job(Job j);
    void dispatch();
    void handle(Result& r);
    void mark_done(Job& j, int c, std::size_t i);
    void finish(Job& j);
    bool inject_bounce(Job& j);  // false: try again later
    bool try_inject_bounce(Job& j);
    Result deliver_local(const Task& t);
    Result deliver_remote(const Task& t);
    // users/assign's domain lines, read again only when the file is replaced (every local delivery asks)
    std::shared_ptr<const std::vector<qv::AssignEntry>> assign_domains();
    std::time_t next_timer() const;

    qv::Paths paths_;
    qv::QueueDirs dirs_;
    Controls controls_;
    std::optional<std::string> local_program_;
    std::string remote_program_;
    qv::Owner remote_owner_, send_owner_;  // qmailr runs qmail-remote, qmails BOUNCEPROCESSOR (as root)
    std::map<std::uint64_t, Job> jobs_;
    bool scanned_ = false;  // todo/ was looked at once: what an earlier run left is gone
    std::deque<std::pair<std::uint64_t, std::size_t>> ready_[2];  // due now: (message, recipient)
    struct Timer {
        std::time_t at;
        int channel;
        std::uint64_t n;
        std::size_t index;
        bool operator>(const Timer& o) const { return at > o.at; }
    };
    std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;  // deferred ones
    void defer(int c, std::uint64_t n, std::size_t i, std::time_t at);
    void wake_timers(bool all);  // due ones (or, flushing, all) back to ready_
    std::set<std::uint64_t> retry_bounce_;  // done, but the bounce could not be injected yet
    std::size_t busy_[2] = {0, 0};
    std::size_t unsynced_ = 0;  // deliveries done whose new names the NameSyncer is flushing
    std::uint64_t deliveries_ = 0, messages_done_ = 0;
    qv::GroupSync group_;
    qv::QueueRecycler recycler_{dirs_};
    std::mutex assign_mu_;
    std::shared_ptr<const std::vector<qv::AssignEntry>> assign_;
    struct stat assign_st_ {};
    std::mutex results_mu_;
    std::vector<Result> results_;
    std::unique_ptr<NameSyncer> syncer_;  // before the pools: destroyed after them
    std::unique_ptr<Pool> pools_[2];
};

void Sender::add_job(Job j) {
    std::uint64_t n = j.n;
    auto& job = jobs_[n] = std::move(j);
    for (int c = 0; c < 2; ++c)
        for (std::size_t i = 0; i < job.rc[c].size(); ++i)
            if (!job.rc[c][i].done) ready_[c].emplace_back(n, i);
    if (job.finished()) finish(job);
}

// Messages preprocessed before a restart: info/N with local/N and remote/N.
void Sender::load_info() {
    std::error_code ec;
    for (int split = 0; split < dirs_.split(); ++split) {
        fs::path dir = dirs_.root() / "info" / std::to_string(split);
        for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
            auto n = number_name(it->path().filename().string());
            if (!n) continue;
            // todo/N still there: preprocessing did not finish (its files may not be durable); scan_todo
            // does it again, as qmail-send does
            if (jobs_.count(*n) || qv::path_exists(dirs_.todo(*n))) continue;
            auto info = read_fields(dirs_.info(*n));
            if (!info) continue;
            Job j;
            j.n = *n;
            for (const auto& f : *info)
                if (f.letter == 'F') j.sender = f.value;
            struct stat st {};
            j.birth = ::stat(dirs_.info(*n).c_str(), &st) == 0 ? st.st_mtime : std::time(nullptr);
            for (int c = 0; c < 2; ++c) {
                auto fields = read_fields(c == kLocal ? dirs_.local(*n) : dirs_.remote(*n));
                if (!fields) continue;
                for (const auto& f : *fields)
                    if (f.letter == 'T' || f.letter == 'D') j.rc[c].push_back({f.value, f.offset, f.letter == 'D'});
            }
            add_job(std::move(j));
        }
    }
}

// Removes info/N (first: without it, the others mean nothing), local/N, remote/N and, with `bounce`,
// bounce/N: a preprocessing that failed, or what a run that died left of a message still in todo/.
void Sender::discard_preprocessed(std::uint64_t n, bool bounce) {
    for (const fs::path& p : {dirs_.info(n), dirs_.local(n), dirs_.remote(n)}) ::unlink(p.c_str());
    if (bounce) ::unlink(dirs_.bounce(n).c_str());
}

// Writes info/N, local/N and remote/N of a job (not yet durable: the caller flushes).
void Sender::write_preprocessed(Job& j) {
    auto write_file = [&](const fs::path& p, const std::string& data) {
        int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) throw qv::sys_error(qv::Exit::ioerr, "cannot write", p, errno);
        bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
        int e = errno;
        ::close(fd);
        if (!ok) throw qv::sys_error(qv::Exit::ioerr, "cannot write", p, e);
    };
    for (int c = 0; c < 2; ++c) {
        fs::path p = c == kLocal ? dirs_.local(j.n) : dirs_.remote(j.n);
        std::string text;
        for (auto& r : j.rc[c]) {
            r.offset = static_cast<off_t>(text.size());
            text += (r.done ? "D" : "T") + r.addr + '\0';
        }
        if (!text.empty())
            write_file(p, text);
        else
            ::unlink(p.c_str());
    }
    write_file(dirs_.info(j.n), "F" + j.sender + '\0');  // last: info/N says the message is preprocessed
}

// All of todo/: at the start, every kRescan, and when the trigger does not say which messages came.
void Sender::scan_todo() {
    std::vector<std::uint64_t> found;
    std::error_code ec;
    for (auto it = fs::directory_iterator(dirs_.root() / "todo", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        auto n = number_name(it->path().filename().string());
        if (n) found.push_back(*n);
    }
    if (ec) log_line("alert: cannot read todo/: " + ec.message());
    std::sort(found.begin(), found.end());
    take_new(std::move(found), false);
}

// New messages: those of `found` not yet taken. `named`: the trigger named them, and one already
// delivered and gone (a scan found it first) is no trouble. A message for one local recipient is
// delivered straight from todo/N (the fast path: no info/ or local/ files, no flush; todo/N goes once it
// is delivered, and a crash before that only delivers it again, qmail's window). Any other becomes
// info/N, local/N, remote/N (one flush for all of them), then todo/N goes.
void Sender::take_new(std::vector<std::uint64_t> found, bool named) {
    std::vector<Job> made;
    for (std::uint64_t n : found) {
        if (jobs_.count(n)) continue;
        // what an earlier run left of this message (its preprocessing or delivery did not finish) goes;
        // this run leaves nothing (a preprocessing that fails is undone), so only its first scan looks
        if (!scanned_) discard_preprocessed(n, true);
        auto fields = read_fields(dirs_.todo(n));
        if (!fields && named && errno == ENOENT) continue;
        struct stat st {};
        if (!fields || ::stat(dirs_.mess(n).c_str(), &st) != 0) {
            log_line("warning: trouble with todo/" + std::to_string(n) + ": no message file or unreadable envelope");
            continue;
        }
        Job j;
        j.n = n;
        j.birth = std::time(nullptr);
        std::string qp, uid;
        for (const auto& f : *fields) {
            if (f.letter == 'F') j.sender = f.value;
            if (f.letter == 'p') qp = f.value;
            if (f.letter == 'u') uid = f.value;
            if (f.letter != 'T') continue;
            auto [c, addr] = rewrite(controls_, f.value);
            Rcpt r;
            r.addr = addr;
            j.rc[c].push_back(r);
        }
        j.fast = j.rc[kLocal].size() == 1 && j.rc[kRemote].empty();
        if (!j.fast) {
            try {
                write_preprocessed(j);
            } catch (const std::exception& e) {
                log_line(std::string("warning: ") + e.what());
                discard_preprocessed(n, false);
                continue;
            }
        }
        log_line("new msg " + std::to_string(n));
        log_line("info msg " + std::to_string(n) + ": bytes " + std::to_string(st.st_size) + " from <" + j.sender +
                 "> qp " + qp + " uid " + uid);
        made.push_back(std::move(j));
    }
    scanned_ = true;
    if (made.empty()) return;
    bool slow = std::any_of(made.begin(), made.end(), [](const Job& j) { return !j.fast; });
    if (slow) {
        try {
            group_.sync(dirs_.root());  // info/, local/, remote/ durable before todo/N goes
        } catch (const std::exception& e) {
            log_line(std::string("alert: ") + e.what() + "; trying again later");
            for (auto& j : made)
                if (j.fast)
                    add_job(std::move(j));
                else
                    discard_preprocessed(j.n, false);
            return;
        }
    }
    for (auto& j : made) {
        if (!j.fast) {  // todo/N first: intd/N is then the file's only name, and may be reused
            ::unlink(dirs_.todo(j.n).c_str());
            recycler_.remove(dirs_.intd(j.n));
        }
        add_job(std::move(j));
    }
}

// A message on the fast path that must wait (a deferral): preprocessed after all, so that it keeps its
// marks and its retry schedule. False when that failed (it stays in todo/, tried again later).
bool Sender::leave_fast_path(Job& j) {
    try {
        write_preprocessed(j);
        group_.sync(dirs_.root());
    } catch (const std::exception& e) {
        log_line(std::string("alert: msg ") + std::to_string(j.n) + ": " + e.what());
        discard_preprocessed(j.n, false);  // it stays on the fast path: its finish removes no info/N
        return false;
    }
    ::unlink(dirs_.todo(j.n).c_str());
    recycler_.remove(dirs_.intd(j.n));
    j.fast = false;
    return true;
}

void Sender::defer(int c, std::uint64_t n, std::size_t i, std::time_t at) {
    jobs_[n].rc[c][i].next = at;
    timers_.push({at, c, n, i});
}

void Sender::wake_timers(bool all) {
    const std::time_t now = std::time(nullptr);
    std::size_t woken = 0;
    while (!timers_.empty() && (all || timers_.top().at <= now)) {
        Timer t = timers_.top();
        timers_.pop();
        auto it = jobs_.find(t.n);
        if (it == jobs_.end()) continue;
        Rcpt& r = it->second.rc[t.channel][t.index];
        if (r.done || r.busy || r.next != t.at) continue;  // stale
        r.next = 0;
        ready_[t.channel].emplace_back(t.n, t.index);
        ++woken;
    }
    if (all) log_line("status: flush: " + std::to_string(woken) + " deferred deliveries retried now");
}

// qmail-clean's work: what a writer that died left behind (pid/ files; intd/N without todo/N; a message
// file that is neither queued, preprocessed nor being delivered), once older than 36 hours: no writer
// lives that long (qmail-queue gives up after 24).
void Sender::cleanup() {
    const std::time_t cutoff = std::time(nullptr) - kOssified;
    std::size_t removed = 0;
    auto old = [&](const fs::path& p) {
        struct stat st {};
        return ::lstat(p.c_str(), &st) == 0 && st.st_mtime < cutoff;
    };
    auto each = [&](const fs::path& dir, const std::function<void(const fs::path&)>& fn) {
        std::error_code ec;
        for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
            fn(it->path());
    };
    each(dirs_.root() / "pid", [&](const fs::path& p) {
        if (old(p) && ::unlink(p.c_str()) == 0) ++removed;
    });
    each(dirs_.root() / "intd", [&](const fs::path& p) {
        auto n = number_name(p.filename().string());
        if (n && old(p) && !qv::path_exists(dirs_.todo(*n)) && ::unlink(p.c_str()) == 0) ++removed;
    });
    for (int split = 0; split < dirs_.split(); ++split)
        each(dirs_.root() / "mess" / std::to_string(split), [&](const fs::path& p) {
            auto n = number_name(p.filename().string());
            if (!n || jobs_.count(*n) || !old(p)) return;
            if (qv::path_exists(dirs_.todo(*n)) || qv::path_exists(dirs_.info(*n)) || qv::path_exists(dirs_.intd(*n)))
                return;
            if (::unlink(p.c_str()) == 0) ++removed;
        });
    if (removed) log_line("status: removed " + std::to_string(removed) + " leftovers older than 36 hours");
}

void Sender::dispatch() {
    wake_timers(false);
    const std::time_t now = std::time(nullptr);
    for (int c = 0; c < 2; ++c) {
        while (busy_[c] < controls_.concurrency[c] && !ready_[c].empty()) {
            auto [n, i] = ready_[c].front();
            ready_[c].pop_front();
            auto it = jobs_.find(n);
            if (it == jobs_.end()) continue;
            Job& j = it->second;
            Rcpt& r = j.rc[c][i];
            if (r.done || r.busy) continue;
            r.busy = true;
            ++j.busy;
            ++busy_[c];
            Task t{c, n, i, r.addr, j.sender, dirs_.mess(n), now > j.birth + controls_.queuelifetime, ++deliveries_};
            pools_[c]->submit(std::move(t));
        }
    }
}

std::time_t Sender::next_timer() const {
    return timers_.empty() ? 0 : timers_.top().at;
}

void Sender::mark_done(Job& j, int c, std::size_t i) {
    Rcpt& r = j.rc[c][i];
    if (j.fast) {  // nothing on disk to mark: todo/N goes when the message is finished
        r.done = true;
        return;
    }
    fs::path p = c == kLocal ? dirs_.local(j.n) : dirs_.remote(j.n);
    int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::pwrite(fd, "D", 1, r.offset) != 1)
        log_line("warning: cannot mark " + r.addr + " done in " + p.string() + ": " + std::strerror(errno) +
                 "; the message will be delivered twice!");
    if (fd >= 0) ::close(fd);
    r.done = true;
}

void Sender::handle(Result& res) {
    const Task& t = res.task;
    if (res.event != Result::done_slot_freed) --busy_[t.channel];  // its thread is free
    if (res.event == Result::slot_free) {                           // the delivery is not durable yet
        ++unsynced_;
        return;
    }
    if (res.event == Result::done_slot_freed) --unsynced_;
    auto it = jobs_.find(t.n);
    if (it == jobs_.end()) return;
    Job& j = it->second;
    --j.busy;
    Rcpt& r = j.rc[t.channel][t.index];
    r.busy = false;
    DeliveryOutcome& o = res.outcome;
    if (o.kind == DeliveryOutcome::temporary && t.dying) {
        o.kind = DeliveryOutcome::permanent;
        o.text += "\nI'm not going to try again; this message has been in the queue too long.";
    }
    char secs[32];
    std::snprintf(secs, sizeof secs, " (%.3f s)", res.seconds);
    log_line("delivery " + std::to_string(t.id) + ": msg " + std::to_string(t.n) + " " + channel_name(t.channel) + " " +
             r.addr + ": " + qv::to_string(o.kind) + ": " + one_line(o.text) + secs);
    if (o.kind == DeliveryOutcome::temporary) {
        std::time_t at = next_retry(j.birth, std::time(nullptr), t.channel);
        if (j.fast && !leave_fast_path(j)) at = std::time(nullptr) + 60;
        defer(t.channel, t.n, t.index, at);
        return;
    }
    if (o.kind == DeliveryOutcome::permanent) {
        // the recipient's paragraph durable in bounce/N before its mark
        std::string para = qv::bounce_paragraph(t.channel == kLocal ? original_address(controls_, r.addr) : r.addr, o.text);
        fs::path b = dirs_.bounce(j.n);
        int fd = ::open(b.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        struct stat before {};
        bool ok = fd >= 0 && ::fstat(fd, &before) == 0 &&
                  ::write(fd, para.data(), para.size()) == static_cast<ssize_t>(para.size()) && ::fdatasync(fd) == 0;
        if (!ok && fd >= 0 && before.st_size >= 0) {  // no half paragraph left for the retry to follow
            int e = errno;
            [[maybe_unused]] int rc = ::ftruncate(fd, before.st_size);
            errno = e;
        }
        if (fd >= 0) ::close(fd);
        if (!ok) {
            log_line("warning: cannot write " + b.string() + ": " + std::strerror(errno) + "; trying again later");
            defer(t.channel, t.n, t.index, std::time(nullptr) + 60);
            return;
        }
    }
    mark_done(j, t.channel, t.index);
    if (j.finished()) finish(j);
}

// Everything delivered or bounced: the bounce, then the files, info/N and mess/N last.
void Sender::finish(Job& j) {
    const std::uint64_t n = j.n;
    if (qv::path_exists(dirs_.bounce(n)) && !inject_bounce(j)) {
        retry_bounce_.insert(n);
        return;
    }
    retry_bounce_.erase(n);
    if (j.fast) {  // todo/N first: once it is gone, the message is no longer queued
        ::unlink(dirs_.todo(n).c_str());
        recycler_.remove(dirs_.intd(n));
        ::unlink(dirs_.bounce(n).c_str());  // never preprocessed: no info/, local/ or remote/ file
    } else {
        // intd/N too, as qmail-clean does: preprocessing removes it, unless it was killed just before
        ::unlink(dirs_.intd(n).c_str());
        ::unlink(dirs_.bounce(n).c_str());
        ::unlink(dirs_.local(n).c_str());
        ::unlink(dirs_.remote(n).c_str());
        ::unlink(dirs_.info(n).c_str());
    }
    recycler_.remove(dirs_.mess(n));  // kept for qmail-queued to reuse, or removed
    log_line("end msg " + std::to_string(n));
    ++messages_done_;
    jobs_.erase(n);
}

bool Sender::inject_bounce(Job& j) {
    try {
        return try_inject_bounce(j);
    } catch (const std::exception& e) {
        log_line("alert: bounce msg " + std::to_string(j.n) + ": " + e.what() + "; trying again later");
        return false;
    }
}

bool Sender::try_inject_bounce(Job& j) {
    const std::uint64_t n = j.n;
    std::string content;
    {
        int fd = ::open(dirs_.bounce(n).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        char buf[8192];
        ssize_t got;
        while ((got = ::read(fd, buf, sizeof buf)) > 0) content.append(buf, static_cast<std::size_t>(got));
        ::close(fd);
    }
    if (j.sender == "#@[]") {
        log_line("triple bounce: discarding bounce/" + std::to_string(n));
        return true;
    }
    const bool double_bounce = j.sender.empty();
    // the bounce's environment: BOUNCEQUEUE, then bounce.envrules for the original sender
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv(*e);
        auto eq = kv.find('=');
        if (eq != std::string_view::npos) env[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
    }
    qv::Paths bp = paths_;
    try {
        qv::BounceRulesSetting rs = qv::bounce_rules_setting(paths_);
        auto rules = qv::load_envrules(rs.file, rs.kind);
        auto changes = qv::bounce_injection_environment(env, rules, j.sender, rs.kind);
        bp = qv::Paths::from(qv::Env(env));
        for (const auto& ch : changes)
            log_line("bounce msg " + std::to_string(n) + ": " + rs.file.filename().string() + " line " +
                     std::to_string(ch.rule->line) + " sets " + ch.assignment.name +
                     (ch.assignment.value ? "=" + *ch.assignment.value : " unset"));
    } catch (const std::exception& e) {
        log_line("alert: bounce msg " + std::to_string(n) + ": " + e.what() + "; trying again later");
        return false;
    }
    std::string me = qv::control_first_line(bp, "me").value_or(controls_.me);
    std::string host = qv::control_first_line(bp, "bouncehost").value_or(me);
    qv::BounceHead h;
    h.from = qv::control_first_line(bp, "bouncefrom").value_or("MAILER-DAEMON") + "@" + host;
    h.host = host;
    h.double_bounce = double_bounce;
    std::string to = j.sender;
    if (double_bounce)
        to = qv::control_first_line(bp, "doublebounceto").value_or("postmaster") + "@" +
             qv::control_first_line(bp, "doublebouncehost").value_or(me);
    h.to = to;
    auto [first_rcpt, report] = qv::split_bounce_file(content);
    std::vector<std::string> envv;  // BOUNCEPROCESSOR and the queue program run with the bounce's environment
    for (const auto& [k, v] : env) envv.push_back(k + "=" + v);
    if (auto proc = env.find("BOUNCEPROCESSOR"); proc != env.end() && !proc->second.empty()) {
        qv::BounceReport br{dirs_.bounce(n).string(), report, double_bounce ? "#@[]" : "", first_rcpt, to};
        qv::ProgramRun run;
        run.argv = qv::bounce_processor_argv(proc->second, br);
        run.env = envv;
        run.as = send_owner_;
        run.timeout = 600;
        qv::BounceVerdict v;
        int status = 0;
        try {
            status = qv::run_program(run).status;
            v = qv::bounce_processor_verdict(status);
        } catch (const std::exception& e) {
            v = qv::BounceVerdict::retry;
        }
        log_line("bounce processor msg " + std::to_string(n) + " sender <" + j.sender + "> recipient <" + first_rcpt +
                 "> exit=" + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ": " + qv::to_string(v));
        if (v == qv::BounceVerdict::discard) return true;
        if (v == qv::BounceVerdict::retry) return false;
    }
    int mfd = ::open(dirs_.mess(n).c_str(), O_RDONLY | O_CLOEXEC);
    if (mfd < 0) {
        log_line("alert: cannot read " + dirs_.mess(n).string() + " for its bounce: " + std::strerror(errno));
        return false;
    }
    struct stat st {};
    ::fstat(mfd, &st);
    qv::LocalMessage m{mfd, 0, static_cast<std::uint64_t>(st.st_size), double_bounce ? "#@[]" : ""};
    std::string head = qv::bounce_message_head(h, content, std::time(nullptr)) + "Return-Path: <" + j.sender + ">\n";
    std::string verdict = qv::inject_copy(bp, m, head, {to}, &envv);
    ::close(mfd);
    if (!verdict.empty()) {
        log_line("alert: cannot inject the bounce of msg " + std::to_string(n) + ": " + one_line(verdict.substr(1)) +
                 "; trying again later");
        return false;
    }
    log_line("bounce msg " + std::to_string(n) + " to <" + to + ">" +
             (bp.qmailqueue ? " through " + *bp.qmailqueue : std::string()));
    return true;
}

std::shared_ptr<const std::vector<qv::AssignEntry>> Sender::assign_domains() {
    fs::path file = paths_.assigndir / "assign";
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 && errno != ENOENT)
        throw qv::Error(qv::Exit::ioerr, "cannot stat " + file.string() + ": " + std::strerror(errno));
    std::lock_guard lock(assign_mu_);
    // the admin tools replace it by a rename: a new inode (or a new time or size when edited in place)
    if (!assign_ || st.st_ino != assign_st_.st_ino || st.st_dev != assign_st_.st_dev || st.st_size != assign_st_.st_size ||
        st.st_mtim.tv_sec != assign_st_.st_mtim.tv_sec || st.st_mtim.tv_nsec != assign_st_.st_mtim.tv_nsec) {
        assign_ = std::make_shared<const std::vector<qv::AssignEntry>>(qv::AssignFile::load(file).domains());
        assign_st_ = st;
    }
    return assign_;
}

// One local recipient: "prefix-local@domain" for a virtual domain.
Result Sender::deliver_local(const Task& t) {
    auto start = std::chrono::steady_clock::now();
    auto done = [&](DeliveryOutcome o) {
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return Result{t, std::move(o), s, {}, Result::done};
    };
    auto at = t.addr.rfind('@');
    std::string lp = t.addr.substr(0, at), host = t.addr.substr(at + 1);
    std::optional<qv::AssignEntry> entry;
    try {
        // the longest wildcard line whose key starts the local part (qmail-lspawn's users/cdb lookup)
        for (const auto& e : *assign_domains())
            if (lp.starts_with(e.local) && (!entry || e.local.size() > entry->local.size())) entry = e;
    } catch (const std::exception& e) {
        return done({DeliveryOutcome::temporary, std::string(e.what()) + " (#4.3.0)"});
    }
    if (!entry)  // a local domain that is not virtual: qmail-local would look for a system user
        return done({DeliveryOutcome::temporary,
                     "No users/assign line takes " + lp + ": qvmail delivers virtual domains only; QMAILLOCAL may name "
                     "a program for other local mail. (#4.3.5)"});
    std::string ext = lp.substr(entry->local.size());
    int fd = ::open(t.mess.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return done({DeliveryOutcome::temporary, "cannot open " + t.mess.string() + ": " + std::strerror(errno) + " (#4.3.0)"});
    struct stat st {};
    ::fstat(fd, &st);
    qv::LocalMessage m{fd, 0, static_cast<std::uint64_t>(st.st_size), t.sender};
    DeliveryOutcome o;
    std::vector<fs::path> unsynced;
    if (local_program_) {
        qv::ProgramRun run;
        run.argv = {*local_program_, "--", entry->user, entry->dir.string(), lp, "-", ext, host, t.sender, "./Maildir/", ""};
        run.env = qv::environment_with({{"QMAILREMOTE", std::nullopt}});
        run.stdin_fd = fd;
        run.as = qv::Owner{entry->uid, entry->gid};
        run.cwd = entry->dir;
        run.timeout = kProgramTimeout;
        try {
            qv::ProgramResult r = qv::run_program(run);
            int code = r.exit_code();
            o.kind = code == 0 ? DeliveryOutcome::success : code == 100 ? DeliveryOutcome::permanent : DeliveryOutcome::temporary;
            o.text = r.output.empty() ? (code < 0 ? "the delivery program crashed" : "exit " + std::to_string(code)) : r.output;
        } catch (const std::exception& e) {
            o = {DeliveryOutcome::temporary, e.what()};
        }
    } else {
        // as the domain's owner, as qmail-lspawn would run qmail-local (this thread only)
        const bool root = ::geteuid() == 0;
        if (root) {
            ::setfsgid(entry->gid);
            ::setfsuid(entry->uid);
        }
        thread_local std::unique_ptr<qv::Store> store;
        thread_local std::time_t store_opened = 0;
        auto get_store = [&]() -> qv::Store& {
            if (!store || std::time(nullptr) - store_opened > 300) {  // reopened now and then: a server may restart
                store = qv::open_store(paths_);
                store_opened = std::time(nullptr);
            }
            return *store;
        };
        qv::LocalOptions opts;
        opts.group = &group_;
        opts.unsynced_names = &unsynced;
        opts.remote_program = remote_program_;
        opts.program_owner = qv::Owner{entry->uid, entry->gid};
        opts.remote_owner = remote_owner_;
        opts.qmail_ext = std::getenv("QMAIL_EXT") != nullptr;
        o = qv::deliver_virtual(paths_, get_store, ext, host, m, opts);
        if (o.kind == DeliveryOutcome::temporary) store.reset();  // a broken connection, maybe
        if (root) {
            ::setfsuid(0);
            ::setfsgid(0);
        }
    }
    ::close(fd);
    Result res = done(std::move(o));
    res.unsynced = std::move(unsynced);
    return res;
}

// One remote recipient: qmail-remote host sender qqeh size recipient.
Result Sender::deliver_remote(const Task& t) {
    auto start = std::chrono::steady_clock::now();
    auto done = [&](DeliveryOutcome o) {
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return Result{t, std::move(o), s, {}, Result::done};
    };
    int fd = ::open(t.mess.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return done({DeliveryOutcome::temporary, "cannot open " + t.mess.string() + ": " + std::strerror(errno)});
    struct stat st {};
    ::fstat(fd, &st);
    std::string host = t.addr.substr(t.addr.rfind('@') + 1);
    qv::ProgramRun run;
    run.argv = {remote_program_, host, t.sender, "", std::to_string(st.st_size), t.addr};
    run.env = qv::environment_with({{"QMAILLOCAL", std::nullopt}});
    run.stdin_fd = fd;
    run.as = remote_owner_;
    run.cwd = "/";
    run.timeout = kProgramTimeout;
    DeliveryOutcome o;
    try {
        qv::ProgramResult r = qv::run_program(run);
        qv::SpawnResult v = qv::fold_remote_output(r.output, r.status);
        o.kind = v.code == 'K' ? DeliveryOutcome::success : v.code == 'D' ? DeliveryOutcome::permanent : DeliveryOutcome::temporary;
        o.text = v.text;
    } catch (const std::exception& e) {
        o = {DeliveryOutcome::temporary, e.what()};
    }
    ::close(fd);
    return done(std::move(o));
}

int Sender::run() {
    // one qmail-send a queue: lock/sendmutex, holding our pid for qmailctl queue flush
    fs::path mutex = dirs_.root() / "lock" / "sendmutex";
    int lock_fd = ::open(mutex.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) throw qv::sys_error(qv::Exit::noinput, "cannot open", mutex, errno);
    bool locked = false;
    for (int i = 0; i < 40 && !(locked = ::flock(lock_fd, LOCK_EX | LOCK_NB) == 0); ++i)
        ::usleep(25000);  // qmailctl queue flush probes it with a shared lock for an instant
    if (!locked) throw qv::Error(qv::Exit::tempfail, "another qmail-send is running on " + dirs_.root().string());
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd, 0) != 0 || ::pwrite(lock_fd, pid.data(), pid.size(), 0) < 0)
        throw qv::sys_error(qv::Exit::ioerr, "cannot write", mutex, errno);

    fs::path trig = dirs_.trigger();
    int trig_fd = ::open(trig.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (trig_fd < 0) throw qv::sys_error(qv::Exit::noinput, "cannot open", trig, errno);
    int trig_keep = ::open(trig.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // never an end of file
    (void)trig_keep;
    qv::TriggerReader trigger(trig_fd);

    log_line("status: qmail-send starting on " + dirs_.root().string() + ", local " +
             std::to_string(controls_.concurrency[kLocal]) + ", remote " + std::to_string(controls_.concurrency[kRemote]) +
             (local_program_ ? ", QMAILLOCAL " + *local_program_ : std::string()));
    log_flush();
    scan_todo();  // first: a todo/N is preprocessed again even when its info/N exists
    load_info();
    cleanup();
    std::time_t last_scan = std::time(nullptr), last_clean = last_scan;
    bool triggered = false;
    auto last_trigger_scan = Clock::now();
    bool stopping = false;
    for (;;) {
        if (g_term && !stopping) {
            stopping = true;
            log_line("status: exiting when the deliveries under way are done");
        }
        if (g_hup) {
            g_hup = 0;
            try {
                controls_ = load_controls(paths_);
                log_line("status: control files read again");
            } catch (const std::exception& e) {
                log_line(std::string("alert: cannot read the control files, keeping the old ones: ") + e.what());
            }
        }
        if (g_alrm) {
            g_alrm = 0;
            wake_timers(true);
            for (auto m : std::vector<std::uint64_t>(retry_bounce_.begin(), retry_bounce_.end()))
                if (auto it = jobs_.find(m); it != jobs_.end()) finish(it->second);
        }
        std::vector<Result> got;
        {
            std::lock_guard<std::mutex> g(results_mu_);
            got.swap(results_);
        }
        for (auto& r : got) handle(r);
        if (stopping && busy_[kLocal] == 0 && busy_[kRemote] == 0 && unsynced_ == 0) break;
        const std::time_t now = std::time(nullptr);
        if (!stopping) {
            if (now - last_clean >= kCleanEvery) {
                cleanup();
                last_clean = now;
            }
            if (now - last_scan >= kRescan) {
                scan_todo();
                last_scan = now;
                for (auto m : std::vector<std::uint64_t>(retry_bounce_.begin(), retry_bounce_.end()))
                    if (auto it = jobs_.find(m); it != jobs_.end()) finish(it->second);
            }
            dispatch();
        }
        int timeout = static_cast<int>(std::max<std::time_t>(0, last_scan + kRescan - now)) * 1000;
        if (std::time_t t = next_timer(); t && !stopping)
            timeout = std::min<int>(timeout, static_cast<int>(std::clamp<std::time_t>(t - now, 1, kRescan)) * 1000);
        if (triggered && !stopping) {  // a scan due within kTriggerGap
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(last_trigger_scan + kTriggerGap - Clock::now());
            timeout = std::min<int>(timeout, static_cast<int>(std::max<long long>(left.count(), 0)));
        }
        log_flush();
        pollfd p[2] = {{trig_fd, POLLIN, 0}, {g_wake_r, POLLIN, 0}};
        int rc = ::poll(p, 2, timeout);
        if (rc < 0 && errno != EINTR) throw qv::Error(qv::Exit::ioerr, std::string("poll: ") + std::strerror(errno));
        char buf[4096];
        if (rc > 0 && (p[1].revents & POLLIN))
            while (::read(p[1].fd, buf, sizeof buf) > 0) {
            }
        if (rc > 0 && (p[0].revents & POLLIN)) {
            qv::TriggerReader::News news = trigger.drain();
            if (news.scan) triggered = true;
            // qvmail's writers name their messages: no need to list todo/
            if (!news.numbers.empty() && !stopping) take_new(std::move(news.numbers), true);
        }
        // a scan lists all of todo/, where messages on the fast path wait until delivered: under load,
        // one scan for the triggers of kTriggerGap, not one for each
        if (triggered && !stopping && Clock::now() - last_trigger_scan >= kTriggerGap) {
            triggered = false;
            scan_todo();
            last_scan = std::time(nullptr);
            last_trigger_scan = Clock::now();
        }
    }
    log_line("status: exiting: " + std::to_string(deliveries_) + " delivery attempts, " + std::to_string(messages_done_) +
             " messages done, " + std::to_string(group_.flushes()) + " flushes for " + std::to_string(group_.requests()) +
             " durable writes");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "--version") == 0)) {
        if (argv[1][2] == 'v')
            std::fputs("qmail-send " QV_VERSION "\n", stdout);
        else
            std::fputs("usage: qmail-send\n"
                       "Delivers what the queue (QUEUEDIR, default QMAILHOME/queue) holds: local mail for virtual\n"
                       "domains in-process (QMAILLOCAL names a program instead), remote mail through qmail-remote\n"
                       "(or QMAILREMOTE); bounces through BOUNCEPROCESSOR, bounce.envrules and BOUNCEQUEUE. Logs a\n"
                       "line per delivery attempt on standard output. TERM: finish and exit; HUP: re-read the\n"
                       "control files; ALRM (qmailctl queue flush): retry deferred mail now. See qmail-send(8).\n",
                       stdout);
        return 0;
    }
    if (argc != 1) {
        std::fputs("qmail-send: usage: qmail-send (no arguments; see qmail-send --help)\n", stderr);
        return 64;
    }
    int wake[2];
    if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        std::perror("qmail-send: pipe");
        return 111;
    }
    g_wake_r = wake[0];
    g_wake_w = wake[1];
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGTERM, SIGHUP, SIGALRM}) ::sigaction(sig, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    struct FlushLog {
        ~FlushLog() { log_flush(); }
    } flush_log;  // after the sender, and whatever it logged on its way out
    try {
        qv::Paths paths = qv::Paths::from_env();
        // the service's variables (service/qmail-send/variables/, which qmailctl bounce edits), as envdir
        // would set them, for those this environment does not set itself
        for (const auto& [name, value] : qv::service_variables(paths, qv::kSendService))
            if (value && !std::getenv(name.c_str())) ::setenv(name.c_str(), value->c_str(), 1);
        paths = qv::Paths::from_env();
        Sender sender(paths);
        return sender.run();
    } catch (const qv::Error& e) {
        log_line(std::string("alert: qmail-send: ") + e.what());
        return e.code() == qv::Exit::tempfail ? 75 : 111;
    } catch (const std::exception& e) {
        log_line(std::string("alert: qmail-send: ") + e.what());
        return 111;
    }
}
