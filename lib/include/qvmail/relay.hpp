// Who may relay through this host, and why: the one decision qmail-smtpd takes for a recipient and
// `qmailctl relay test` explains. The mechanisms, in the order qmail-smtpd meets them:
//   tcp.smtp       a tcpserver rule that sets RELAYCLIENT (tcp.smtp.cdb, as tcpserver reads it)
//   relayclients   control/relayclients: the client IP or a prefix ending in '.', "IP:append"
//   relaydomains   control/relaydomains: the client's host name or a suffix starting with '.'
//   smtp-auth      a successful SMTP AUTH, unless the mailbox has NO_RELAY
//   relaymailfrom  control/relaymailfrom(.cdb): the envelope sender or its @domain
//   rcpthosts      a recipient in one of our domains (control/rcpthosts, morercpthosts.cdb): not relaying
//   relay-grant    a POP/IMAP-before-SMTP grant for the client (CHECKRELAY)
// qvmail's qmail-smtpd decides each recipient with a RelayPolicy (what decide_relay() runs), so that the
// explanation cannot drift from what its server does; qmailctl(8) lists where it differs from IndiMail's.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "qvmail/paths.hpp"
#include "qvmail/progress.hpp"

namespace qv {

class Store;

struct RelayQuery {
    std::string ip;                        // TCPREMOTEIP
    std::optional<std::string> host;       // TCPREMOTEHOST, when known
    std::optional<std::string> info;       // TCPREMOTEINFO
    std::optional<std::string> sender;     // MAIL FROM
    std::optional<std::string> recipient;  // RCPT TO
    std::optional<std::string> auth_user;  // the user a successful SMTP AUTH named

    // Set by qmail-smtpd, which runs under tcpserver: tcpserver has applied tcp.smtp already, and this
    // is the RELAYCLIENT it set (nullopt: none). Unset (qmailctl relay test): tcp.smtp.cdb is looked up
    // as tcpserver would.
    struct Tcpserver {
        std::optional<std::string> relayclient;
    };
    std::optional<Tcpserver> tcpserver;
    // Set by qmail-smtpd after SMTP AUTH: the checkpassword program's verdict on auth_user (true: exit
    // 0, may relay; false: exit 3, NO_RELAY). Unset: the store's flags say (qmailctl relay test).
    std::optional<bool> auth_may_relay;
};

struct RelayDecision {
    enum Verdict {
        relay,     // the client may relay
        local,     // the recipient is ours: accepted without relaying
        refused,   // 553: not ours, and no mechanism lets the client relay
        rejected,  // 550: a relay probe (@, % or ! in the local part)
        denied,    // tcp.smtp denies the connection itself
    } verdict = refused;
    std::string mechanism;              // which mechanism decided (see above), empty when none
    std::string source;                 // the file or table that decided
    std::optional<std::uint64_t> line;  // its line, for files
    std::string text;                   // the line or row
    std::string append;                 // RELAYCLIENT's value: appended to every recipient
    std::vector<std::string> trace;     // every mechanism consulted and what it said

    bool accepted() const noexcept { return verdict == relay || verdict == local; }
    const char* verdict_name() const noexcept;
};

// The relay configuration, each file read the first time a decision needs it and kept: qmail-smtpd
// keeps one for a connection and decides every recipient with it.
class RelayPolicy {
public:
    explicit RelayPolicy(const Paths& paths);
    ~RelayPolicy();
    RelayPolicy(const RelayPolicy&) = delete;
    RelayPolicy& operator=(const RelayPolicy&) = delete;

    // `store` may be null when the query names no AUTH user and grants are not wanted.
    RelayDecision decide(Store* store, const RelayQuery& q, std::time_t now) const;
    // Whether `domain` (lower-case), or a suffix of it starting at '.', is in rcpthosts or
    // morercpthosts.cdb: which file and key, or nullopt (always nullopt without rcpthosts: fail closed).
    std::optional<std::string> local_domain(const std::string& domain, std::vector<std::string>* trace = nullptr) const;

private:
    struct Files;
    Paths paths_;
    std::unique_ptr<Files> files_;  // filled as decisions need them
};

// One decision with a policy of its own (qmailctl relay test).
RelayDecision decide_relay(const Paths& paths, Store* store, const RelayQuery& q, std::time_t now);

// Checks and normalises entries of the relay control files. Throw Error 65.
std::string relayclients_entry(std::string_view text);   // IP or prefix ending in '.', optional ":append"
std::string relaydomains_entry(std::string_view text);   // host or .suffix, optional ":append"
std::string relaymailfrom_entry(std::string_view text);  // user@domain or @domain, lower-cased
// What a list of senders (relaymailfrom, badmailfrom) is searched for, in order: the sender, then its
// @domain, lower-cased.
std::vector<std::string> sender_keys(std::string_view sender);
// A tcp.smtp address: IPv4 address, prefix ending in '.', last-octet range a.b.c.x-y, =host,
// =.suffix, or user@ip; "" or "default" is the rule for every other client. Throws Error 65.
std::string tcprules_address(std::string_view text);
// One tcp.smtp rule line; each value quoted with a character it does not contain.
std::string format_rule(std::string_view address, bool deny,
                        const std::vector<std::pair<std::string, std::string>>& env);

// ---- administration: qmailctl relay, clearopensmtp, vchkpass ----
// The editing functions change the files in one transaction (a source and its cdb together, or
// neither) and return its steps; with `dry_run` they only say what they would do. The caller holds
// the admin lock.

struct TcpRule {
    std::uint64_t line = 0;
    std::string address;
    bool deny = false;
    std::vector<std::pair<std::string, std::string>> env;
    std::string text;
};
// The rules of tcp.smtp (TCP_FILE), in order. Throws ParseError for a malformed line.
std::vector<TcpRule> list_tcp_rules(const Paths& paths);
// Appends a rule; throws Error 9 when tcp.smtp already has a rule for the address.
std::vector<std::string> add_tcp_rule(const Paths& paths, const std::string& address, bool deny,
                                      const std::vector<std::pair<std::string, std::string>>& env, bool dry_run);
// Removes every rule for the address; throws Error 6 when there is none.
std::vector<std::string> remove_tcp_rule(const Paths& paths, const std::string& address, bool dry_run);

enum class RelayList { clients, domains, mailfrom };
const char* relay_list_name(RelayList l) noexcept;  // "relayclients", ...
// The file: control/relayclients (or the file RELAYCLIENTS names), relaydomains, relaymailfrom.
std::filesystem::path relay_list_file(const Paths& paths, RelayList l);
std::string relay_list_entry(RelayList l, std::string_view text);  // validates and normalises (Error 65)
std::vector<std::string> relay_list_entries(const Paths& paths, RelayList l);
// Add throws Error 9 when the entry (or, for relayclients and relaydomains, its key) is there;
// remove throws Error 6 when it is not. relaymailfrom.cdb is rebuilt with relaymailfrom.
std::vector<std::string> relay_list_add(const Paths& paths, RelayList l, const std::string& entry, bool dry_run);
std::vector<std::string> relay_list_remove(const Paths& paths, RelayList l, const std::string& entry, bool dry_run);

// Records a POP/IMAP-before-SMTP grant (REPLACE semantics) and, on the files backend, rebuilds
// tcp.smtp.cdb so that it takes effect.
std::vector<std::string> grant_relay(const Paths& paths, Store& store, const std::string& email, const std::string& ip,
                                     std::time_t now, bool dry_run);
std::uint64_t revoke_relay(const Paths& paths, Store& store, const std::string& ip,
                           const std::optional<std::string>& email, bool dry_run, std::vector<std::string>& steps);
// clearopensmtp: purge the grants older than `minutes` and rebuild tcp.smtp.cdb.
struct ClearOptions {
    bool purge = true;
    bool rebuild = true;
    unsigned minutes = 60;
    std::uint64_t batch = 2000;  // rows per DELETE on the MariaDB backend
    bool dry_run = false;
    ProgressFn progress;  // hears of the rows removed so far (MariaDB backend)
};
struct ClearResult {
    std::uint64_t deleted = 0;
    std::uint64_t kept = 0;
    std::uint64_t batches = 0;
    bool rebuilt = false;
    std::vector<std::string> steps;
};
// `store` may be null when only rebuilding.
ClearResult clear_open_smtp(const Paths& paths, Store* store, const ClearOptions& opts, std::time_t now);

// Checks an IP address given for a grant (IPv4 or IPv6). Throws Error 65.
std::string grant_ip(std::string_view text);

}  // namespace qv
