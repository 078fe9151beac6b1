// Remote delivery by SMTP, as qmail-remote does it: where to send (smtproutes, else the host's MX
// records, else its own address), the session with the mail exchanger, and the reports that qmail-remote
// writes for qmail-send (or that qmail-send reads in-process), plus qmail-rspawn's folding of those
// reports into one result.
//
// smtproutes: lines "domain:relay[:port]" in control/smtproutes (or the file SMTPROUTESFILE names,
// relative to CONTROLDIR); the environment variable SMTPROUTE, one line of the same form (as IndiMail's
// vdelivermail sets it for a .qmail-default handler domain:host:port), replaces the file. A host is
// looked up as its whole name, then each suffix starting at a '.', then "" (the catch-all line ":relay");
// for mail with an empty sender, IndiMail's "!@:relay[:port]" line comes first. The last line for a domain
// wins (qmail's constmap). An empty relay means the normal MX lookup (".af.mil:" keeps the catch-all away
// from af.mil's subdomains; with a port, the MX lookup is done and the port used: a qvmail extension). A
// relay may be an address, IPv6 ones in brackets ("example.com:[::1]:25"). Port 465 means TLS from the
// first byte (SMTPS), as in IndiMail. Malformed lines (a bad port, an unbracketed IPv6 address, no ':')
// are skipped at delivery; SmtpRoutes::parse's `problems` names them, for a checker.
//
// Resolution: a route's relay is resolved with getaddrinfo (or taken as an address) and no MX lookup is
// made; otherwise the host's MX records (through the system resolver, res_nquery), best preference
// first, equal preferences in random order, each resolved with getaddrinfo; a host without MX records
// (NODATA) is tried at its own addresses; NXDOMAIN is a permanent failure, a resolver that cannot answer
// (SERVFAIL, timeout, REFUSED) a temporary one; "[1.2.3.4]" is used as it is. As in qmail, when this host
// is one of the mail exchangers, only the better ones are tried (none: "Although I'm listed as a
// best-preference MX..."); addresses given by smtproutes are always tried. A null MX (RFC 7505, ".") is a
// permanent failure. Unlike qmail, there is no CNAME lookup of recipients' domains (RFC 5321 wants
// addresses sent as they are) and no tcpto table of hosts that timed out; and a relay in smtproutes that
// does not resolve defers the message (a mistake in the file is mended, not bounced; qmail bounces).
//
// The session: the addresses are tried in order until one connects (control/timeoutconnect, default 60
// s), the socket bound first to the source address choose_outgoing_ip() gives for the host (an address of
// the other family than the destination's is not bound); a greeting that fails (not 220, or the
// connection closing) moves on to the next address as RFC 5321 asks (qmail gives up). EHLO with
// control/helohost (else control/me, else the machine's name), HELO when EHLO is refused; STARTTLS when
// offered (opportunistic, the certificate not verified, as qmail's TLS patches by default; a handshake
// that fails is retried once in clear on a new connection, where IndiMail defers the message), then EHLO
// again; MAIL FROM with SIZE= when offered; RCPT TO for each recipient, one at a time; DATA with the
// optional extra header text (IndiMail's qqeh) and the message, LF made CRLF and lines starting with '.'
// doubled; QUIT without waiting for its reply. Every reply, and every write, has control/timeoutremote
// (default 1200 s). A reply of several lines is read whole; one that is not SMTP counts as 400.
// A last line without LF is completed with CRLF and sent (qmail refuses the message for good, "SMTP
// cannot transfer messages with partial final lines"; every other MTA completes the line).
//
// The reports, byte for byte qmail-remote's: for each recipient in order "r" (accepted), "h<text>"
// (refused for good, 5xx) or "s<text>" (refused for now, 4xx), then one message report "K<text>"
// (accepted), "Z<text>" (try again later) or "D<text>" (failed for good), each ended by a NUL byte;
// fewer recipient reports when the session failed before RCPT. qmail's texts, e.g. "127.0.0.1 accepted
// message.\nRemote host said: 250 ok\n". A recipient with a control character in it is refused ("h")
// without being sent; a sender with one fails the message ("D").
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qv {

struct Paths;

// ---- smtproutes ----

constexpr unsigned kSmtpPort = 25;
constexpr unsigned kSmtpsPort = 465;  // TLS from the first byte

struct SmtpRoute {
    std::string relay;     // a host name or an address (brackets removed); empty: the MX lookup
    bool literal = false;  // the relay is an IPv4 or IPv6 address
    unsigned port = kSmtpPort;
    bool tls_on_connect() const noexcept { return port == kSmtpsPort; }
};

class SmtpRoutes {
public:
    // Parses smtproutes text (one route a line; '#' comments and blank lines skipped). Malformed lines
    // are skipped and, with `problems`, reported as "line N: why".
    static SmtpRoutes parse(std::string_view text, std::vector<std::string>* problems = nullptr);
    // SMTPROUTE when it is set, else the smtproutes file (Paths::smtproutesfile); a missing file has no
    // routes. Throws Error 66 when the file cannot be read.
    static SmtpRoutes load(const Paths& paths, std::vector<std::string>* problems = nullptr);

    // The route for mail to `host` (any case) from `sender`; nullopt when no line applies. A route with
    // an empty relay means the MX lookup of `host` (on the route's port).
    std::optional<SmtpRoute> lookup(std::string_view host, std::string_view sender) const;
    std::size_t size() const noexcept { return routes_.size(); }

private:
    std::unordered_map<std::string, SmtpRoute> routes_;  // lower-cased domain ("!@": the null sender)
};

// Parses one route's right-hand side, "relay[:port]" ("" included). nullopt with `why` when malformed.
std::optional<SmtpRoute> parse_smtp_route(std::string_view relay_port, std::string* why = nullptr);

// ---- mail exchangers ----

struct MxRecord {
    unsigned preference = 0;
    std::string name;
};
// Sorts by preference, records of equal preference shuffled with `rng`.
void order_mx(std::vector<MxRecord>& records, std::mt19937_64& rng);

// ---- the session ----

// What qmail-remote reads from control files once. Throws Error (66 unreadable, 78 not a number).
struct RemoteConfig {
    std::string helohost;      // control/helohost, else control/me, else the machine's name
    int timeout_connect = 60;  // control/timeoutconnect
    int timeout = 1200;        // control/timeoutremote: seconds for each reply, and for each write
    SmtpRoutes routes;
    std::vector<std::string> route_problems;  // malformed smtproutes lines, skipped

    static RemoteConfig load(const Paths& paths);
};

// One delivery: qmail-remote's arguments (IndiMail's form: host sender qqeh size recipient...).
struct RemoteMessage {
    std::string host;                   // the recipients' domain, or [address]
    std::string sender;                 // "" for bounces
    std::string qqeh;                   // header text put before the message (usually empty)
    std::optional<std::uint64_t> size;  // the message's bytes, for ESMTP SIZE
    std::vector<std::string> recipients;
};

struct RecipientReport {
    char code = 'h';   // 'r' accepted, 'h' refused for good, 's' refused for now
    std::string text;  // empty with 'r'
};

struct RemoteResult {
    std::vector<RecipientReport> recipients;  // in order; fewer when the session failed before RCPT
    char code = 'Z';                          // 'K' accepted, 'Z' temporary failure, 'D' permanent failure
    std::string text;                         // qmail's text, ending in '\n'
    std::string partner;                      // the address of the server it last spoke to ("" if none)
    std::string tls;                          // "TLSv1.3 TLS_AES_256_GCM_SHA384" when TLS was used
};

// Delivers the message read from `message_fd` (from where it stands) as `config` and `paths` say
// (outgoing address: choose_outgoing_ip(paths, host)). Never throws for what goes wrong with the
// delivery: that is in the result. The caller ignores SIGPIPE (TLS writes go through write(2)).
RemoteResult deliver_remote(const Paths& paths, const RemoteConfig& config, const RemoteMessage& message,
                            int message_fd);

// A result without a session (a control file unreadable, say): `code` 'Z' or 'D', `text` without the
// final '\n', which is added.
RemoteResult remote_failure(char code, std::string_view text);

// The bytes qmail-remote writes: each recipient report, then the message report, each ended by NUL.
std::string format_reports(const RemoteResult& result);

// ---- qmail-rspawn's folding ----

// The single result qmail-rspawn makes of qmail-remote's output for qmail-send, from the bytes it wrote
// and its wait status (waitpid): "Zqmail-remote crashed." (killed by a signal), "ZUnable to run
// qmail-remote." (exit 111), "DUnable to run qmail-remote." (another non-zero exit), "Zqmail-remote
// produced no output."; else the first K, Z or D report gives the result, which a first recipient report
// "s" makes Z and "h" makes D; the text is the first report's, followed by the message report's when the
// message result is no better than that verdict. Meant for one recipient per run, as qmail-rspawn runs it.
struct SpawnResult {
    char code = 'Z';  // 'K', 'Z' or 'D'
    std::string text;
};
SpawnResult fold_remote_output(std::string_view output, int wait_status);

}  // namespace qv
