// A mail host at a glance. See host_status.hpp.
#include "qvmail/host_status.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/queue.hpp"
#include "qvmail/store.hpp"
#include "qvmail/text.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

// ---- processes ----

// When the process started (Unix seconds), from /proc.
std::optional<std::time_t> process_start(pid_t pid) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
    auto paren = text.rfind(')');
    if (paren == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(paren + 2));
    std::string f;
    unsigned long long start = 0;
    for (int i = 3; fields >> f; ++i)  // the first field after ')' is the third
        if (i == 22) {
            start = std::strtoull(f.c_str(), nullptr, 10);
            break;
        }
    std::ifstream stat("/proc/stat");
    std::string key;
    long long btime = -1;
    while (stat >> key)
        if (key == "btime") {
            stat >> btime;
            break;
        }
    long ticks = ::sysconf(_SC_CLK_TCK);
    if (btime < 0 || ticks <= 0 || start == 0) return std::nullopt;
    return static_cast<std::time_t>(btime + static_cast<long long>(start / static_cast<unsigned long long>(ticks)));
}

// The process holding the socket with this inode (one this user may look into), if any.
std::optional<pid_t> socket_owner(const std::string& inode) {
    const std::string want = "socket:[" + inode + "]";
    std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
    if (!proc) return std::nullopt;
    while (dirent* e = ::readdir(proc.get())) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end) continue;
        std::string fd_dir = std::string("/proc/") + e->d_name + "/fd";
        std::unique_ptr<DIR, int (*)(DIR*)> fds(::opendir(fd_dir.c_str()), ::closedir);
        if (!fds) continue;
        while (dirent* f = ::readdir(fds.get())) {
            char buf[64];
            std::string link = fd_dir + "/" + f->d_name;
            ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
            if (n > 0 && std::string_view(buf, static_cast<std::size_t>(n)) == want) return static_cast<pid_t>(pid);
        }
    }
    return std::nullopt;
}

// The inode of the unix socket listening at `path` (/proc/net/unix), if one does.
std::optional<std::string> unix_listener(const fs::path& path) {
    std::ifstream in("/proc/net/unix");
    std::string line;
    std::getline(in, line);  // the heading
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string num, refs, proto, flags, type, st, inode, p;
        if (!(f >> num >> refs >> proto >> flags >> type >> st >> inode >> p)) continue;
        // __SO_ACCEPTCON (0x10000): listening
        if (p == path.string() && (std::strtoul(flags.c_str(), nullptr, 16) & 0x10000u)) return inode;
    }
    return std::nullopt;
}

// The inode of a TCP socket listening on `port` (/proc/net/tcp, tcp6), if one does.
std::optional<std::string> tcp_listener(unsigned port) {
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);
        while (std::getline(in, line)) {
            std::istringstream f(line);
            std::string sl, local, remote, st, queues, tr, retr, uid, timeout, inode;
            if (!(f >> sl >> local >> remote >> st >> queues >> tr >> retr >> uid >> timeout >> inode)) continue;
            auto colon = local.rfind(':');
            if (st == "0A" && colon != std::string::npos &&
                std::strtoul(local.c_str() + colon + 1, nullptr, 16) == port)
                return inode;
        }
    }
    return std::nullopt;
}

// ---- systemd ----

bool systemd_runs() {
    struct stat st {};
    return ::stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

struct Unit {
    std::string load, active, sub, file_state;
    pid_t pid = 0;
    std::time_t since = 0;
};

// `systemctl show` of these units (names and values from systemd only: nothing here reaches a shell
// that came from elsewhere).
std::map<std::string, Unit> show_units(const std::vector<std::string>& names) {
    std::map<std::string, Unit> out;
    std::string cmd = "systemctl show --timestamp=unix "
                      "--property=Id,LoadState,ActiveState,SubState,MainPID,ActiveEnterTimestamp,UnitFileState";
    for (const auto& n : names) cmd += " " + n;
    cmd += " 2>/dev/null";
    std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
    if (!p) return out;
    LineReader in(::fileno(p.get()), "systemctl show");
    std::string_view line;
    Unit u;
    std::string id;
    auto flush = [&] {
        if (!id.empty()) out[id] = u;
        u = Unit{};
        id.clear();
    };
    while (in.next(line)) {
        if (line.empty()) {
            flush();
            continue;
        }
        auto eq = line.find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view k = line.substr(0, eq), v = line.substr(eq + 1);
        if (k == "Id") id = v;
        else if (k == "LoadState") u.load = v;
        else if (k == "ActiveState") u.active = v;
        else if (k == "SubState") u.sub = v;
        else if (k == "UnitFileState") u.file_state = v;
        else if (k == "MainPID") u.pid = static_cast<pid_t>(std::strtol(std::string(v).c_str(), nullptr, 10));
        else if (k == "ActiveEnterTimestamp" && v.starts_with('@'))
            u.since = static_cast<std::time_t>(std::strtoll(std::string(v.substr(1)).c_str(), nullptr, 10));
    }
    flush();
    return out;
}

// The SMTP services this host has: the ports of its service/qmail-smtpd.PORT directories.
std::vector<unsigned> smtp_ports(const Paths& paths) {
    std::vector<unsigned> ports;
    std::error_code ec;
    for (auto it = fs::directory_iterator(paths.servicedir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        std::string n = it->path().filename().string();
        if (!n.starts_with("qmail-smtpd.")) continue;
        char* end = nullptr;
        unsigned long port = std::strtoul(n.c_str() + 12, &end, 10);
        if (*end == '\0' && port > 0 && port < 65536) ports.push_back(static_cast<unsigned>(port));
    }
    std::sort(ports.begin(), ports.end());
    return ports;
}

std::vector<ServiceState> services(const Paths& paths) {
    QueueDirs dirs(paths.queuedir);
    std::vector<ServiceState> out;
    std::vector<unsigned> ports = smtp_ports(paths);
    std::vector<std::string> names = {"qmail-queued", "qmail-send"};
    for (unsigned p : ports) names.push_back("qmail-smtpd@" + std::to_string(p));
    names.push_back("clearopensmtp.timer");
    std::map<std::string, Unit> units;
    if (systemd_runs()) {
        std::vector<std::string> ids;
        for (const auto& n : names) ids.push_back(n.find('.') == std::string::npos ? n + ".service" : n);
        units = show_units(ids);
    }
    for (const auto& n : names) {
        ServiceState s;
        s.name = n;
        auto u = units.find(n.find('.') == std::string::npos ? n + ".service" : n);
        if (u != units.end() && u->second.load == "loaded") {
            const Unit& unit = u->second;
            s.how = "systemd";
            s.running = unit.active == "active";
            s.expected = unit.file_state == "enabled";
            if (unit.pid > 0) s.pid = unit.pid;
            if (unit.since > 0) s.since = unit.since;
            out.push_back(s);
            continue;
        }
        // not a unit here: what the processes themselves leave
        if (n == "qmail-send") {
            s.expected = true;
            s.how = "lock/sendmutex";
            try {
                s.pid = running_qmail_send(dirs);
            } catch (const Error&) {
            }
            s.running = s.pid.has_value();
        } else if (n == "qmail-queued") {
            s.how = "socket " + paths.queue_socket.string();
            if (auto inode = unix_listener(paths.queue_socket)) {
                s.running = true;
                s.pid = socket_owner(*inode);
            }
        } else if (n.starts_with("qmail-smtpd@")) {
            unsigned port = static_cast<unsigned>(std::strtoul(n.c_str() + 12, nullptr, 10));
            s.how = "port " + std::to_string(port);
            if (auto inode = tcp_listener(port)) {
                s.running = true;
                s.pid = socket_owner(*inode);
            }
        } else {
            s.known = false;  // a timer exists under systemd only
            s.how = "not a systemd unit here";
        }
        if (s.pid) s.since = process_start(*s.pid);
        out.push_back(s);
    }
    return out;
}

// ---- the queue ----

std::string domain_of(const std::string& address) {
    auto at = address.rfind('@');
    return at == std::string::npos ? std::string() : ascii_lower(std::string_view(address).substr(at + 1));
}

QueueSummary queue_summary(const Paths& paths, const ProgressFn& progress) {
    QueueSummary q;
    QueueDirs dirs(paths.queuedir);
    std::map<std::string, DomainWaiting> by;
    for (const auto& m : scan_queue(dirs, progress)) {
        if (m.state == QueuedMessage::incomplete) {
            ++q.incomplete;
            continue;
        }
        ++q.messages;
        if (m.state == QueuedMessage::todo) ++q.todo;
        q.bytes += m.size;
        if (!q.oldest || m.time < q.oldest) q.oldest = m.time;
        if (m.state != QueuedMessage::preprocessed) continue;
        for (const auto& r : m.recipients) {
            if (r.done) continue;
            ++q.waiting;
            DomainWaiting& d = by[domain_of(r.address)];
            d.domain = domain_of(r.address);
            ++d.recipients;
            if (!d.oldest || m.time < d.oldest) d.oldest = m.time;
        }
    }
    for (auto& [name, d] : by) q.by_domain.push_back(d);
    std::sort(q.by_domain.begin(), q.by_domain.end(), [](const DomainWaiting& a, const DomainWaiting& b) {
        return a.recipients != b.recipients ? a.recipients > b.recipients : a.domain < b.domain;
    });
    std::error_code ec;
    for (auto it = fs::directory_iterator(dirs.root() / "bounce", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        struct stat st {};
        if (::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
        ++q.bounces;
        if (!q.oldest_bounce || st.st_mtime < q.oldest_bounce) q.oldest_bounce = st.st_mtime;
    }
    return q;
}

// ---- qmail-send's log ----

std::optional<std::time_t> parse_tai64n(std::string_view s) {
    if (s.size() < 25 || s[0] != '@') return std::nullopt;
    unsigned long long v = 0;
    for (char c : s.substr(1, 16)) {
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return std::nullopt;
        v = v * 16 + static_cast<unsigned>(d);
    }
    const unsigned long long base = 4611686018427387914ull;  // 2^62 + 10: TAI64 of 1970 (libtai's UTC)
    if (v < base) return std::nullopt;
    return static_cast<std::time_t>(v - base);
}

// "2026-12-03T10:00:00[.frac][+0100|Z]", with 'T', ' ' or '_' between date and time; UTC without a zone.
std::optional<std::time_t> parse_iso(std::string_view s, std::size_t& used) {
    int Y, M, D, h, m, sec;
    char sep;
    if (s.size() < 19 ||
        std::sscanf(std::string(s.substr(0, 19)).c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d", &Y, &M, &D, &sep, &h, &m, &sec) != 7 ||
        (sep != 'T' && sep != ' ' && sep != '_'))
        return std::nullopt;
    std::tm tm{};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    std::time_t t = ::timegm(&tm);
    std::size_t i = 19;
    if (i < s.size() && s[i] == '.')
        for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        }
    if (i < s.size() && s[i] == 'Z') {
        ++i;
    } else if (i + 5 <= s.size() && (s[i] == '+' || s[i] == '-')) {
        // +hhmm (journalctl before 255) or +hh:mm (RFC 3339)
        const bool colon = i + 6 <= s.size() && s[i + 3] == ':';
        std::string digits = std::string(s.substr(i + 1, 2)) + std::string(s.substr(i + (colon ? 4 : 3), 2));
        int hh = 0, mm = 0;
        if (digits.size() == 4 && std::sscanf(digits.c_str(), "%2d%2d", &hh, &mm) == 2) {
            t -= (s[i] == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
            i += colon ? 6 : 5;
        }
    }
    used = i;
    return t;
}

}  // namespace

std::optional<SendLogEvent> parse_send_log_line(std::string_view line) {
    auto at = line.find("delivery ");
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view rest = line.substr(at);
    // "delivery D: msg N local|remote ADDRESS: success|deferral|failure: ..."
    if (rest.find(": msg ") == std::string_view::npos) return std::nullopt;
    // the first of the three: what follows is the remote host's words, which may hold any of them
    SendLogEvent e;
    std::size_t first = std::string_view::npos;
    for (auto [word, kind] : {std::pair{": success: ", SendLogEvent::delivered}, std::pair{": deferral: ", SendLogEvent::deferred},
                              std::pair{": failure: ", SendLogEvent::bounced}})
        if (std::size_t k = rest.find(word); k < first) {
            first = k;
            e.kind = kind;
        }
    if (first == std::string_view::npos) return std::nullopt;
    std::string_view stamp = line.substr(0, at);
    while (!stamp.empty() && stamp.front() == ' ') stamp.remove_prefix(1);
    if (auto t = parse_tai64n(stamp)) {
        e.time = t;
    } else if (!stamp.empty() && stamp[0] >= '0' && stamp[0] <= '9') {
        std::size_t used = 0;
        if (auto t2 = parse_iso(stamp, used)) {
            e.time = t2;
        } else {
            // journalctl -o short-unix: "1796291991.123456 host qmail-send[1]: "
            char* end = nullptr;
            std::string s(stamp.substr(0, stamp.find(' ')));
            long long v = std::strtoll(s.c_str(), &end, 10);
            if (end != s.c_str() && (*end == '\0' || *end == '.') && v > 0) e.time = static_cast<std::time_t>(v);
        }
    }
    return e;
}

namespace {

void count_deliveries(LineReader& in, std::time_t now, DeliverySummary& d) {
    const std::time_t first = (now / 60 - 59) * 60;
    d.minutes.assign(60, DeliveryMinute{});
    for (int i = 0; i < 60; ++i) d.minutes[static_cast<std::size_t>(i)].minute = first + i * 60;
    std::string_view line;
    while (in.next(line)) {
        auto e = parse_send_log_line(line);
        if (!e) continue;
        if (!e->time) {
            ++d.unstamped;
            continue;
        }
        if (*e->time < first || *e->time >= first + 3600) continue;
        DeliveryMinute& m = d.minutes[static_cast<std::size_t>((*e->time - first) / 60)];
        switch (e->kind) {
            case SendLogEvent::delivered: ++m.delivered, ++d.delivered; break;
            case SendLogEvent::deferred: ++m.deferred, ++d.deferred; break;
            case SendLogEvent::bounced: ++m.bounced, ++d.bounced; break;
        }
    }
    if (d.unstamped && !d.delivered && !d.deferred && !d.bounced)
        d.problem = d.source + " has no timestamps (log through multilog t, svlogd -tt or the journal)";
}

DeliverySummary deliveries(const StatusOptions& opts, std::time_t now) {
    DeliverySummary d;
    if (opts.send_log) {
        d.source = opts.send_log->string();
        try {
            LineReader in(*opts.send_log);
            count_deliveries(in, now, d);
        } catch (const Error& e) {
            d.problem = e.what();
        }
        return d;
    }
    if (!systemd_runs()) {
        d.problem = "no log: give qmail-send's log file with --log";
        return d;
    }
    d.source = "the journal of qmail-send.service";
    std::string cmd = "journalctl --quiet --no-pager --output=short-unix --unit=qmail-send.service --since=@" +
                      std::to_string(static_cast<long long>(now - 3600)) + " 2>/dev/null";
    std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
    if (!p) {
        d.problem = "cannot run journalctl";
        return d;
    }
    {
        LineReader in(::fileno(p.get()), "journalctl");
        count_deliveries(in, now, d);
    }
    int st = ::pclose(p.release());
    if (st != 0 && d.delivered + d.deferred + d.bounced == 0)
        d.problem = "journalctl failed (exit " + std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : -1) +
                    "): the journal needs root or group systemd-journal";
    return d;
}

}  // namespace

HostStatus host_status(const Paths& paths, const StatusOptions& opts) {
    HostStatus s;
    s.now = std::time(nullptr);
    s.qmailhome = paths.qmailhome;
    s.hostname = control_first_line(paths, "me").value_or("");
    s.services = services(paths);
    s.queue = queue_summary(paths, opts.progress);
    s.deliveries = deliveries(opts, s.now);

    // the store, its server, and the relay grants it holds
    try {
        auto store = open_store(paths, opts.mysql);
        s.store.backend = std::string(store->backend());
        if (auto cfg = mysql_config(paths, opts.mysql)) {
            s.store.server = cfg->describe();
            try {
                MysqlConnection conn(*cfg, false);
                s.store.version = conn.server_version();
            } catch (const Error&) {
            }
        }
        const std::int64_t cutoff = static_cast<std::int64_t>(s.now) - static_cast<std::int64_t>(paths.relay_clear_minutes) * 60;
        s.grants.source = store->grants_source();
        for (const auto& g : store->list_grants())
            if (g.timestamp > cutoff) {
                ++s.grants.in_force;
                if (!s.grants.oldest || g.timestamp < s.grants.oldest) s.grants.oldest = g.timestamp;
            }
    } catch (const Error& e) {
        s.store.up = false;
        s.store.problem = e.what();
        if (s.store.backend.empty()) s.store.backend = mysql_config(paths, opts.mysql) ? "mysql" : "files";
    }

    // what needs attention
    for (const auto& svc : s.services)
        if (svc.expected && !svc.running) s.attention.push_back(svc.name + " is not running");
    if (!s.store.up) s.attention.push_back("the store cannot be read: " + s.store.problem);
    for (const auto& d : s.queue.by_domain)
        if (s.now - d.oldest >= opts.warn_age)
            s.attention.push_back(std::to_string(d.recipients) + " recipient" + (d.recipients == 1 ? "" : "s") + " at " +
                                  (d.domain.empty() ? "(no domain)" : d.domain) + " waiting for " + age_text(s.now - d.oldest));
    if (s.queue.bounces && s.now - s.queue.oldest_bounce >= opts.warn_age)
        s.attention.push_back(std::to_string(s.queue.bounces) + " bounce" + (s.queue.bounces == 1 ? "" : "s") +
                              " not sent for " + age_text(s.now - s.queue.oldest_bounce));
    if (s.queue.messages > opts.warn_queue)
        s.attention.push_back(std::to_string(s.queue.messages) + " messages in the queue (more than " +
                              std::to_string(opts.warn_queue) + ")");
    return s;
}

namespace {

std::string label_value(std::string_view v) {
    std::string out;
    std::string valid;
    if (!is_utf8(v)) {  // a domain is anyone's bytes: Prometheus takes UTF-8 only
        for (unsigned char c : v) valid += c < 0x80 ? static_cast<char>(c) : '?';
        v = valid;
    }
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

}  // namespace

std::string prometheus_text(const HostStatus& s) {
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    auto sample = [&](const char* name, const std::string& labels, double v) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        out += std::string(name) + (labels.empty() ? "" : "{" + labels + "}") + " " + buf + "\n";
    };
    metric("qvmail_service_up", "gauge", "Whether the service runs (1) or not (0).");
    for (const auto& svc : s.services)
        if (svc.known) sample("qvmail_service_up", "service=\"" + label_value(svc.name) + "\"", svc.running ? 1 : 0);
    if (std::any_of(s.services.begin(), s.services.end(), [](const ServiceState& v) { return v.running && v.since; }))
        metric("qvmail_service_start_time_seconds", "gauge", "When the service started, in Unix seconds.");
    for (const auto& svc : s.services)
        if (svc.running && svc.since)
            sample("qvmail_service_start_time_seconds", "service=\"" + label_value(svc.name) + "\"",
                   static_cast<double>(*svc.since));
    metric("qvmail_queue_messages", "gauge", "Messages in the queue.");
    sample("qvmail_queue_messages", "", static_cast<double>(s.queue.messages));
    metric("qvmail_queue_messages_unprocessed", "gauge", "Messages qmail-send has not preprocessed yet (todo/).");
    sample("qvmail_queue_messages_unprocessed", "", static_cast<double>(s.queue.todo));
    metric("qvmail_queue_bytes", "gauge", "Bytes of the queued messages.");
    sample("qvmail_queue_bytes", "", static_cast<double>(s.queue.bytes));
    metric("qvmail_queue_oldest_message_age_seconds", "gauge", "Age of the oldest queued message (0: none).");
    sample("qvmail_queue_oldest_message_age_seconds", "", s.queue.oldest ? static_cast<double>(s.now - s.queue.oldest) : 0);
    if (!s.queue.by_domain.empty())
        metric("qvmail_queue_recipients_waiting", "gauge", "Recipients not yet delivered or bounced, by destination domain.");
    // the 50 domains with most, the rest together: series stay few whatever the queue holds
    std::uint64_t others = 0;
    for (std::size_t i = 0; i < s.queue.by_domain.size(); ++i) {
        const DomainWaiting& d = s.queue.by_domain[i];
        if (i < 50)
            sample("qvmail_queue_recipients_waiting", "domain=\"" + label_value(d.domain) + "\"", static_cast<double>(d.recipients));
        else
            others += d.recipients;
    }
    if (others) sample("qvmail_queue_recipients_waiting", "domain=\"(other)\"", static_cast<double>(others));
    metric("qvmail_queue_bounces_waiting", "gauge", "Bounces not sent yet (bounce/ files).");
    sample("qvmail_queue_bounces_waiting", "", static_cast<double>(s.queue.bounces));
    if (s.deliveries.problem.empty() && !s.deliveries.source.empty()) {
        metric("qvmail_deliveries_last_hour", "gauge", "Delivery attempts in the last hour, by result (from qmail-send's log).");
        sample("qvmail_deliveries_last_hour", "result=\"delivered\"", static_cast<double>(s.deliveries.delivered));
        sample("qvmail_deliveries_last_hour", "result=\"deferred\"", static_cast<double>(s.deliveries.deferred));
        sample("qvmail_deliveries_last_hour", "result=\"bounced\"", static_cast<double>(s.deliveries.bounced));
    }
    metric("qvmail_relay_grants", "gauge", "POP/IMAP-before-SMTP relay grants in force.");
    sample("qvmail_relay_grants", "", static_cast<double>(s.grants.in_force));
    metric("qvmail_store_up", "gauge", "Whether the store (and its server) can be read.");
    sample("qvmail_store_up", "store=\"" + label_value(s.store.backend) + "\"", s.store.up ? 1 : 0);
    metric("qvmail_attention", "gauge", "Things that need the administrator's attention (qmailctl status lists them).");
    sample("qvmail_attention", "", static_cast<double>(s.attention.size()));
    return out;
}

}  // namespace qv
