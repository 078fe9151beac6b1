// A mail host at a glance, as `qmailctl status` shows it: the services (running, since when), the queue
// (messages, the oldest, recipients waiting by destination domain, bounces waiting), the deliveries of
// the last hour per minute (from qmail-send's log), the relay grants in force, the store and its server,
// and what needs the administrator's attention.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/mysql.hpp"
#include "qvmail/progress.hpp"

namespace qv {

struct Paths;

struct ServiceState {
    std::string name;      // qmail-queued, qmail-send, qmail-smtpd@25, clearopensmtp.timer
    bool running = false;  // active (a timer: waiting)
    bool known = true;     // false: nothing tells (not a systemd unit here, and no trace of it)
    bool expected = false; // not running needs attention (an enabled unit; qmail-send always)
    std::optional<pid_t> pid;
    std::optional<std::time_t> since;  // when it started
    std::string how;                    // what told: "systemd", "lock/sendmutex", "socket", "port 25"
};

struct DomainWaiting {
    std::string domain;
    std::uint64_t recipients = 0;
    std::time_t oldest = 0;  // the oldest of their messages
};

struct QueueSummary {
    std::uint64_t messages = 0, todo = 0, incomplete = 0, bytes = 0;
    std::time_t oldest = 0;  // 0: empty
    std::uint64_t waiting = 0;  // recipients of preprocessed messages not yet delivered or bounced
    std::vector<DomainWaiting> by_domain;  // most recipients first
    std::uint64_t bounces = 0;             // bounce/N files: bounces not yet sent
    std::time_t oldest_bounce = 0;
};

struct DeliveryMinute {
    std::time_t minute = 0;  // its start (Unix seconds, a multiple of 60)
    std::uint64_t delivered = 0, deferred = 0, bounced = 0;
};

struct DeliverySummary {
    std::string source;  // "the journal of qmail-send.service", a file name, or "" (none)
    std::string problem; // why there are no figures (no log, no timestamps), or ""
    std::vector<DeliveryMinute> minutes;  // the last 60, oldest first
    std::uint64_t delivered = 0, deferred = 0, bounced = 0;
    std::uint64_t unstamped = 0;  // delivery lines without a timestamp, not counted
};

struct GrantSummary {
    std::uint64_t in_force = 0;
    std::int64_t oldest = 0;  // Unix seconds of the oldest grant in force; 0: none
    std::string source;
};

struct StoreSummary {
    std::string backend;  // "files", "mysql"
    std::string server;   // the MariaDB server (never the password), or ""
    std::string version;  // its version, when reached
    bool up = true;
    std::string problem;
};

struct HostStatus {
    std::string hostname;
    std::filesystem::path qmailhome;
    std::time_t now = 0;
    std::vector<ServiceState> services;
    QueueSummary queue;
    DeliverySummary deliveries;
    GrantSummary grants;
    StoreSummary store;
    std::vector<std::string> attention;  // one line each; empty: all is well
};

struct StatusOptions {
    std::optional<std::filesystem::path> send_log;  // qmail-send's log file; default: its journal
    std::time_t warn_age = 3600;      // a recipient or a bounce waiting this long or longer needs attention
    std::uint64_t warn_queue = 10000; // more messages than this need attention
    MysqlOverrides mysql;
    ProgressFn progress;  // hears of the queue scan
};

HostStatus host_status(const Paths& paths, const StatusOptions& opts);

// The figures in Prometheus' text format (for node_exporter's textfile collector).
std::string prometheus_text(const HostStatus& s);

// One line of qmail-send's log, stamped by multilog (tai64n "@4000..."), by journalctl -o short-unix or
// short-iso, or by svlogd -tt / ts ("2026-12-03 10:00:00" or "2026-12-03_10:00:00"): its time (nullopt
// when it has no stamp) and what a "delivery" line says. nullopt for any other line.
struct SendLogEvent {
    std::optional<std::time_t> time;
    enum Kind { delivered, deferred, bounced } kind = delivered;
};
std::optional<SendLogEvent> parse_send_log_line(std::string_view line);

}  // namespace qv
