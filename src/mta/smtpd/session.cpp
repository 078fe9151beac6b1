// qmail-smtpd's session: the SMTP state machine over descriptors 0 and 1. See qmail-smtpd(8).
#include "session.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unordered_set>

#include "qvmail/error.hpp"
#include "qvmail/queue.hpp"
#include "qvmail/queue_client.hpp"
#include "qvmail/recipient.hpp"
#include "qvmail/relay.hpp"
#include "qvmail/smtp.hpp"
#include "qvmail/store.hpp"
#include "qvmail/text.hpp"
#include "qvmail/tls.hpp"

namespace qv::smtpd {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxCommand = 4096;   // longest command line taken (AUTH responses included)
constexpr int kMaxHops = 100;               // Received and Delivered-To fields: a loop beyond this
constexpr int kMaxErrors = 20;              // bad commands and refused recipients before the session is closed
constexpr int kAuthTimeout = 60;            // seconds the checkpassword program may take

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
}

// Bytes safe in a Received line (qmail's received.c): others become '?'.
std::string safe(std::string_view s) {
    std::string out;
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string_view(".@%+/=:-[]").find(c) != std::string_view::npos;
        out += ok ? c : '?';
    }
    return out;
}

// Whether `ip` (dotted or IPv6 text) is an address of one of this host's interfaces.
bool ip_is_mine(const std::string& ip) {
    in6_addr want6{};
    in_addr want4{};
    bool v4 = ::inet_pton(AF_INET, ip.c_str(), &want4) == 1;
    bool v6 = !v4 && ::inet_pton(AF_INET6, ip.c_str(), &want6) == 1;
    if (!v4 && !v6) return false;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return false;
    bool found = false;
    for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr) continue;
        if (v4 && i->ifa_addr->sa_family == AF_INET)
            found = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr == want4.s_addr;
        if (v6 && i->ifa_addr->sa_family == AF_INET6)
            found = std::memcmp(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, &want6, sizeof want6) == 0;
    }
    ::freeifaddrs(list);
    return found;
}

// ---- the connection: buffered reading with a timeout, and writing, in clear or through TLS ----

class Connection {
public:
    explicit Connection(int timeout) : timeout_(timeout) { out_.reserve(4096); }

    void put(std::string_view s) { out_.append(s); }
    // Sends what is buffered; exits when the client has gone.
    void flush() {
        if (out_.empty()) return;
        bool ok = tls_ ? tls_->write(out_, timeout_) : write_plain(out_);
        out_.clear();
        if (!ok) ::_exit(1);
    }

    // One byte of input; flushes the replies first when it must wait for the client (so pipelined
    // commands get their replies in one write). Exits on a timeout (after telling the client) or at
    // the end of input.
    char get() {
        if (pos_ == len_) fill();
        return buf_[pos_++];
    }
    bool buffered() const noexcept { return pos_ < len_; }
    void discard_buffered() noexcept { pos_ = len_ = 0; }

    void start_tls(std::unique_ptr<TlsStream> tls) {
        tls_ = std::move(tls);
        discard_buffered();  // nothing sent in clear after STARTTLS may count (CVE-2011-0411)
    }
    bool tls() const noexcept { return tls_ != nullptr; }
    const TlsStream* tls_stream() const noexcept { return tls_.get(); }
    int timeout() const noexcept { return timeout_; }

private:
    bool write_plain(std::string_view s) {
        while (!s.empty()) {
            pollfd p{1, POLLOUT, 0};
            if (::poll(&p, 1, timeout_ * 1000) <= 0) return false;
            ssize_t n = ::write(1, s.data(), s.size());
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n <= 0) return false;
            s.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    void fill() {
        flush();
        ssize_t n;
        if (tls_) {
            n = tls_->read(buf_, sizeof buf_, timeout_);
        } else {
            pollfd p{0, POLLIN, 0};
            int r;
            while ((r = ::poll(&p, 1, timeout_ * 1000)) < 0 && errno == EINTR) {
            }
            if (r == 0) {
                errno = ETIMEDOUT;
                n = -1;
            } else {
                while ((n = ::read(0, buf_, sizeof buf_)) < 0 && (errno == EINTR || errno == EAGAIN)) {
                }
            }
        }
        if (n < 0 && errno == ETIMEDOUT) {
            put("421 4.4.2 timeout, closing the connection\r\n");
            flush();
            std::fprintf(stderr, "qmail-smtpd: pid %d: the client sent nothing for %d seconds: timeout\n",
                         static_cast<int>(::getpid()), timeout_);
            ::_exit(1);
        }
        if (n <= 0) ::_exit(1);
        pos_ = 0;
        len_ = static_cast<std::size_t>(n);
    }

    int timeout_;
    char buf_[8192];
    std::size_t pos_ = 0, len_ = 0;
    std::string out_;
    std::unique_ptr<TlsStream> tls_;
};

// ---- the session ----

class Session {
public:
    explicit Session(const Config& c) : c_(c), io_(c.timeout), policy_(c.paths) {}

    int run() {
        reply("220 " + c_.greeting + " ESMTP");
        std::string line;
        for (;;) {
            if (!read_line(line, kMaxCommand)) {
                reply("500 5.5.2 line too long");
                if (++errors_ >= kMaxErrors) return too_many_errors();
                continue;
            }
            smtp::Command cmd = smtp::parse_command(line);
            const std::string& v = cmd.verb;
            if (v == "QUIT") {
                reply("221 2.0.0 " + c_.greeting);
                io_.flush();
                return 0;
            }
            if (v == "HELO") helo(cmd.arg, false);
            else if (v == "EHLO") helo(cmd.arg, true);
            else if (v == "MAIL") mail(cmd.arg);
            else if (v == "RCPT") rcpt(cmd.arg);
            else if (v == "DATA") data(cmd.arg);
            else if (v == "RSET") { reset(); reply("250 2.0.0 flushed"); }
            else if (v == "NOOP") reply("250 2.0.0 ok");
            else if (v == "VRFY") reply("252 2.5.2 send some mail, i'll try my best");
            else if (v == "HELP") reply("214 2.0.0 qvmail qmail-smtpd: see qmail-smtpd(8)");
            else if (v == "STARTTLS") starttls(cmd.arg);
            else if (v == "AUTH") auth(cmd.arg);
            else {
                reply("502 5.5.1 unimplemented");
                if (++errors_ >= kMaxErrors) return too_many_errors();
            }
        }
    }

private:
    // ---- replies and logging ----
    void reply(std::string_view text) {
        io_.put(text);
        io_.put("\r\n");
    }
    void log(const std::string& what) {
        std::fprintf(stderr, "qmail-smtpd: pid %d from %s: %s\n", static_cast<int>(::getpid()), c_.remoteip.c_str(),
                     printable(what).c_str());
    }
    // A refusal: the reply, and the log line that says what was refused and why.
    void refuse(const std::string& what, std::string_view text) {
        reply(text);
        log(what + ": " + std::string(text));
    }
    void count_error() {
        if (++errors_ >= kMaxErrors) ::_exit(too_many_errors());
    }
    int too_many_errors() {
        reply("421 4.7.0 too many errors, closing the connection");
        io_.flush();
        log("too many errors: connection closed");
        return 1;
    }

    // A line without its CR LF; false when longer than `max` (the rest of it is read and dropped).
    bool read_line(std::string& line, std::size_t max) {
        line.clear();
        bool too_long = false;
        for (;;) {
            char ch = io_.get();
            if (ch == '\n') break;
            if (line.size() < max) line += ch;
            else too_long = true;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return !too_long;
    }

    void reset() {
        in_mail_ = false;
        barf_ = false;
        sender_.clear();
        recipients_.clear();
        rcpt_tried_ = false;
    }

    Store& store() {
        if (!store_) store_ = open_store(c_.paths);
        return *store_;
    }

    // ---- commands ----
    void helo(const std::string& arg, bool extended) {
        helo_host_ = arg;
        esmtp_ = extended;
        reset();
        if (!extended) {
            reply("250 " + c_.greeting);
            return;
        }
        reply("250-" + c_.greeting);
        reply("250-PIPELINING");
        reply("250-8BITMIME");
        reply(c_.databytes ? "250-SIZE " + std::to_string(c_.databytes) : std::string("250-SIZE"));
        reply("250-ENHANCEDSTATUSCODES");
        if (!io_.tls() && tls_offered()) reply("250-STARTTLS");
        if (c_.auth_offered() && !auth_user_)
            reply(plain_allowed() ? "250-AUTH PLAIN LOGIN CRAM-MD5" : "250-AUTH CRAM-MD5");
        reply("250 HELP");
    }

    bool tls_offered() {
        if (!tls_checked_) {
            tls_checked_ = true;
            tls_ok_ = ::access(c_.servercert.c_str(), R_OK) == 0;
        }
        return tls_ok_;
    }
    bool plain_allowed() const { return io_.tls() || c_.insecure_auth; }

    void mail(const std::string& arg) {
        if (in_mail_) {
            reply("503 5.5.1 nested MAIL command");
            return;
        }
        if (c_.require_auth && !auth_user_) {  // submission: only for clients that authenticated
            refuse("MAIL " + arg, "530 5.7.0 authentication required");
            return count_error();
        }
        auto [path, err] = smtp::parse_path(arg, "FROM:");
        if (!path || !smtp::clean_address(path->address)) {
            refuse("MAIL " + arg, err == smtp::PathError::too_long ? "501 5.1.7 address too long"
                                                                   : "501 5.5.4 syntax error in MAIL FROM");
            return count_error();
        }
        for (auto& [key, value] : path->params) {
            if (key == "SIZE") {
                auto n = parse_decimal(value);
                if (!n) {
                    reply("501 5.5.4 SIZE needs a number");
                    return;
                }
                if (c_.databytes && *n > c_.databytes) {
                    refuse("MAIL from <" + path->address + "> SIZE=" + value,
                           "552 5.3.4 sorry, that message size exceeds my databytes limit");
                    return;
                }
            } else if (key == "BODY") {
                std::string b = ascii_upper(value);
                if (b != "7BIT" && b != "8BITMIME") {
                    reply("501 5.5.4 BODY is 7BIT or 8BITMIME");
                    return;
                }
            } else if (key != "AUTH") {  // AUTH=<mailbox> (RFC 4954) is taken and not used
                reply("555 5.5.4 unrecognized parameter " + key);
                return;
            }
        }
        barf_ = badmailfrom(path->address);
        sender_ = path->address;
        in_mail_ = true;
        reply("250 2.1.0 ok");
    }

    // control/badmailfrom: addresses and @domains, compared without regard to case
    bool badmailfrom(const std::string& sender) {
        if (!bmf_) {
            bmf_.emplace();
            for (auto& entry : ControlFile::load(c_.paths.control("badmailfrom")).entries())
                bmf_->insert(ascii_lower(entry));
        }
        if (bmf_->empty() || sender.empty()) return false;
        for (auto& key : sender_keys(sender))
            if (bmf_->count(key)) return true;
        return false;
    }

    void rcpt(const std::string& arg) {
        if (!in_mail_) {
            reply("503 5.5.1 MAIL first");
            return;
        }
        rcpt_tried_ = true;
        auto [path, err] = smtp::parse_path(arg, "TO:");
        if (!path || !smtp::clean_address(path->address)) {
            refuse("RCPT " + arg, err == smtp::PathError::too_long ? "501 5.1.3 address too long"
                                                                   : "501 5.5.4 syntax error in RCPT TO");
            return count_error();
        }
        if (!path->params.empty()) {
            reply("555 5.5.4 unrecognized parameter " + path->params.front().first);
            return;
        }
        std::string& addr = path->address;
        if (addr.empty()) {
            refuse("RCPT <>", "553 5.1.3 sorry, the empty address is not a recipient");
            return count_error();
        }
        // an address without a domain is qualified now, as qmail-send would later (control/envnoathost),
        // so that it is checked like any other; but <postmaster> is always taken (RFC 5321 4.5.1)
        std::size_t at = addr.rfind('@');
        const bool postmaster = at == std::string::npos && equal_ignoring_case(addr, "postmaster");
        if (at == std::string::npos && !c_.envnoathost.empty()) {
            at = addr.size();
            addr += "@" + c_.envnoathost;
        } else if (at == std::string::npos && !postmaster) {
            refuse("RCPT <" + addr + ">", "553 5.1.3 sorry, the address needs a domain");
            return count_error();
        }
        // box@[a.b.c.d], one of our own addresses: box@localiphost
        if (at != std::string::npos && addr.size() > at + 2 && addr[at + 1] == '[' && addr.back() == ']' &&
            ip_is_mine(addr.substr(at + 2, addr.size() - at - 3)))
            addr = addr.substr(0, at + 1) + c_.localiphost;
        if (barf_) {
            refuse("RCPT <" + addr + "> from <" + sender_ + ">",
                   "553 5.7.1 sorry, your envelope sender is in my badmailfrom list");
            return count_error();
        }
        if (recipients_.size() >= c_.maxrcpt) {
            refuse("RCPT <" + addr + ">", "452 4.5.3 too many recipients");
            return;
        }
        RelayQuery q;
        q.ip = c_.remoteip;
        q.host = c_.remotehost;
        q.info = c_.remoteinfo;
        q.sender = sender_;
        q.recipient = addr;
        q.auth_user = auth_user_;
        q.auth_may_relay = auth_user_ ? std::optional<bool>(auth_may_relay_) : std::nullopt;
        q.tcpserver = RelayQuery::Tcpserver{c_.relayclient};
        RelayDecision d;
        std::optional<VirtualRecipient> who;
        try {
            d = policy_.decide(c_.checkrelay ? &store() : nullptr, q, std::time(nullptr));
            if (d.accepted() && !postmaster)
                who = resolve_virtual_recipient(c_.paths, [this]() -> Store& { return store(); },
                                                std::string_view(addr).substr(0, at),
                                                std::string_view(addr).substr(at + 1), c_.qmail_ext);
        } catch (const std::exception& e) {
            refuse("RCPT <" + addr + ">: " + e.what(), "451 4.3.0 temporary failure: cannot read the configuration");
            return;
        }
        if (postmaster && !d.accepted()) d.verdict = RelayDecision::local;
        switch (d.verdict) {
            case RelayDecision::rejected:
                refuse("RCPT <" + addr + "> (a relay probe)", "550 5.7.1 we don't relay");
                return count_error();
            case RelayDecision::refused:
            case RelayDecision::denied:
                refuse("RCPT <" + addr + "> from <" + sender_ + ">",
                       "553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts");
                return count_error();
            case RelayDecision::relay:
            case RelayDecision::local:
                break;
        }
        if (who && !who->deliverable()) {
            refuse("RCPT <" + addr + "> (no such mailbox)", "550 5.1.1 sorry, no mailbox here by that name");
            return count_error();  // a harvest of addresses ends after kMaxErrors guesses
        }
        if (d.verdict == RelayDecision::relay) addr += d.append;  // RELAYCLIENT's text, as qmail appends it
        recipients_.push_back(addr);
        reply("250 2.1.5 ok");
    }

    void data(const std::string& arg) {
        if (!arg.empty()) {
            reply("501 5.5.4 DATA takes no argument");
            return;
        }
        if (!in_mail_) {
            reply("503 5.5.1 MAIL first");
            return;
        }
        if (recipients_.empty()) {
            reply(rcpt_tried_ ? "554 5.5.1 no valid recipients" : "503 5.5.1 RCPT first");
            return;
        }
        std::unique_ptr<QueueSubmission> qq;
        try {
            qq = QueueSubmission::open(c_.paths);
        } catch (const std::exception& e) {
            refuse(std::string("DATA: cannot queue: ") + e.what(), "451 4.3.0 qqt failure");
            reset();
            return;
        }
        reply("354 go ahead");
        qq->write(received_line());
        Blast b = blast(*qq);
        Envelope e{sender_, recipients_};
        std::string result = qq->close(e);
        std::string summary = "message from <" + sender_ + "> to " + std::to_string(recipients_.size()) +
                              " recipient" + (recipients_.size() == 1 ? "" : "s") + " (" + join_recipients() +
                              "), " + std::to_string(b.bytes) + " bytes";
        if (result.empty()) {
            reply("250 2.0.0 ok " + std::to_string(std::time(nullptr)) + " qp " + std::to_string(qq->id()));
            log("accepted " + summary + ", qp " + std::to_string(qq->id()) + " via " + qq->via());
        } else if (b.hops) {
            refuse("refused " + summary, "554 5.4.6 too many hops, this message is looping");
        } else if (b.too_big) {
            refuse("refused " + summary, "552 5.3.4 sorry, that message size exceeds my databytes limit");
        } else {
            refuse("refused " + summary + " (" + qq->via() + ")", qq_reply(result));
        }
        reset();
    }

    std::string join_recipients() const {
        std::string s;
        for (std::size_t i = 0; i < recipients_.size() && i < 5; ++i) s += (i ? " " : "") + ("<" + recipients_[i] + ">");
        if (recipients_.size() > 5) s += " ...";
        return s;
    }

    // qmail's "Zqq ... (#4.3.0)" as an SMTP reply: 451/554, the enhanced code from the text.
    static std::string qq_reply(const std::string& r) {
        bool permanent = !r.empty() && r[0] == 'D';
        std::string text = r.substr(1);
        std::string code = permanent ? "5.3.0" : "4.3.0";
        if (auto h = text.rfind("(#"); h != std::string::npos && text.back() == ')') {
            code = text.substr(h + 2, text.size() - h - 3);
            text = text.substr(0, h);
            while (!text.empty() && text.back() == ' ') text.pop_back();
        }
        return std::string(permanent ? "554 " : "451 ") + code + " " + text;
    }

    std::string received_line() const {
        std::string host = c_.remotehost.value_or("unknown");
        std::string s = "Received: from " + safe(host);
        if (!equal_ignoring_case(helo_host_, host) && !helo_host_.empty()) s += " (HELO " + safe(helo_host_) + ")";
        s += " (";
        if (c_.remoteinfo) s += safe(*c_.remoteinfo) + "@";
        s += safe(c_.remoteip) + ")\n  by " + safe(c_.local) + " with ";
        std::string proto = esmtp_ ? "ESMTP" : "SMTP";
        if (io_.tls()) proto += "S";
        if (auth_user_) proto += esmtp_ ? "A" : "";
        s += proto + "; " + rfc822_date(std::time(nullptr)) + "\n";
        return s;
    }

    struct Blast {
        std::uint64_t bytes = 0;
        bool too_big = false;
        bool hops = false;
    };

    // The message, to the line with a single dot: CR LF becomes LF, a leading dot is dropped, and a
    // bare LF ends the session (qmail's rule, https://cr.yp.to/docs/smtplf.html). Received and
    // Delivered-To fields of the header are counted.
    Blast blast(QueueSubmission& qq) {
        Blast b;
        std::string out;
        out.reserve(65536);
        auto put = [&](char ch) {
            ++b.bytes;
            if (c_.databytes && b.bytes > c_.databytes) {
                if (!b.too_big) qq.fail();
                b.too_big = true;
                return;
            }
            out += ch;
            if (out.size() >= 65536) {
                qq.write(out);
                out.clear();
            }
        };
        int hops = 0;
        bool in_header = true;
        std::string field;  // the start of the current header line, lower-cased
        int state = 1;      // 0 in a line, 1 after CR LF, 2 after CR LF '.', 3 after CR LF '.' CR, 4 after CR
        for (;;) {
            char ch = io_.get();
            if (in_header) {
                if (ch == '\n') {
                    if (field.empty() || field == "\r") in_header = false;
                    field.clear();
                } else if (field.size() < 16) {
                    field += ascii_lower(ch);
                    if (field == "received:" || field == "delivered-to:") ++hops;
                }
            }
            switch (state) {
                case 0:
                    if (ch == '\n') stray_newline();
                    if (ch == '\r') {
                        state = 4;
                        continue;
                    }
                    break;
                case 1:
                    if (ch == '\n') stray_newline();
                    if (ch == '.') {
                        state = 2;
                        continue;
                    }
                    if (ch == '\r') {
                        state = 4;
                        continue;
                    }
                    state = 0;
                    break;
                case 2:
                    if (ch == '\n') stray_newline();
                    if (ch == '\r') {
                        state = 3;
                        continue;
                    }
                    state = 0;
                    break;
                case 3:
                    if (ch == '\n') {
                        if (!out.empty()) qq.write(out);
                        if (hops >= kMaxHops) {
                            b.hops = true;
                            qq.fail();
                        }
                        return b;
                    }
                    put('.');
                    put('\r');
                    if (ch == '\r') {
                        state = 4;
                        continue;
                    }
                    state = 0;
                    break;
                case 4:
                    if (ch == '\n') {
                        state = 1;
                        break;
                    }
                    if (ch != '\r') {
                        put('\r');
                        state = 0;
                    }
                    break;
            }
            put(ch);
        }
    }

    [[noreturn]] void stray_newline() {
        reply("421 4.5.0 See https://cr.yp.to/docs/smtplf.html");
        io_.flush();
        log("a bare LF in the message: connection closed, nothing queued");
        ::_exit(1);
    }

    void starttls(const std::string& arg) {
        if (io_.tls()) {
            reply("503 5.5.1 TLS already started");
            return;
        }
        if (!tls_offered()) {
            reply("454 4.7.0 TLS not available");
            return;
        }
        if (!arg.empty()) {
            reply("501 5.5.4 STARTTLS takes no argument");
            return;
        }
        std::unique_ptr<TlsStream> tls;
        try {
            tls = TlsStream::server(c_.servercert);
        } catch (const std::exception& e) {
            refuse(std::string("STARTTLS: ") + e.what(), "454 4.7.0 TLS not available");
            tls_ok_ = false;  // and no longer offered
            return;
        }
        reply("220 2.0.0 ready to start TLS");
        io_.flush();
        try {
            tls->accept(0, 1, c_.timeout);
        } catch (const std::exception& e) {
            log(std::string("STARTTLS failed: ") + e.what());
            ::_exit(1);
        }
        io_.start_tls(std::move(tls));
        // RFC 3207: the client starts over with EHLO, and nothing said before counts
        reset();
        helo_host_.clear();
        esmtp_ = false;
        auth_user_.reset();
    }

    // ---- SMTP AUTH (RFC 4954) through the checkpassword program ----
    // A continuation line of the exchange: decoded, or nullopt after replying (cancelled, malformed).
    std::optional<std::string> auth_read() {
        std::string line;
        if (!read_line(line, kMaxCommand)) {
            reply("500 5.5.2 line too long");
            return std::nullopt;
        }
        if (line == "*") {
            reply("501 5.0.0 auth exchange cancelled");
            return std::nullopt;
        }
        auto d = smtp::base64_decode(line);
        if (!d) reply("501 5.5.2 malformed auth input");
        return d;
    }
    std::optional<std::string> auth_initial(const std::string& initial) {
        if (initial == "=") return std::string();
        auto d = smtp::base64_decode(initial);
        if (!d) reply("501 5.5.2 malformed auth input");
        return d;
    }

    void auth(const std::string& arg) {
        if (!c_.auth_offered()) {
            reply("502 5.5.1 unimplemented");
            return;
        }
        if (auth_user_) {
            reply("503 5.5.1 you're already authenticated");
            return;
        }
        if (in_mail_) {
            reply("503 5.5.1 no auth during a mail transaction");
            return;
        }
        std::size_t sp = arg.find(' ');
        std::string mech = ascii_upper(arg.substr(0, sp));
        std::string initial = sp == std::string::npos ? "" : arg.substr(sp + 1);
        std::string user, secret, response;
        char method = 0;
        if (mech == "PLAIN" || mech == "LOGIN") {
            if (!plain_allowed()) {
                reply("538 5.7.11 encryption required for requested authentication mechanism");
                return;
            }
        }
        if (mech == "PLAIN") {
            method = 2;
            std::optional<std::string> d;
            if (initial.empty()) {
                reply("334 ");
                d = auth_read();
            } else {
                d = auth_initial(initial);
            }
            if (!d) return;
            auto creds = smtp::parse_auth_plain(*d);
            wipe(*d);
            if (!creds) {
                reply("501 5.5.2 malformed auth input");
                return;
            }
            user = std::move(creds->user);
            secret = std::move(creds->password);
        } else if (mech == "LOGIN") {
            method = 1;
            std::optional<std::string> u;
            if (initial.empty()) {
                reply("334 VXNlcm5hbWU6");  // "Username:"
                u = auth_read();
            } else {
                u = auth_initial(initial);
            }
            if (!u) return;
            reply("334 UGFzc3dvcmQ6");  // "Password:"
            auto p = auth_read();
            if (!p) return;
            user = *u;
            secret = std::move(*p);
        } else if (mech == "CRAM-MD5") {
            method = 3;
            if (!initial.empty()) {
                reply("501 5.5.4 CRAM-MD5 takes no initial response");
                return;
            }
            std::string challenge = "<" + std::to_string(::getpid()) + "." + std::to_string(std::time(nullptr)) + "@" +
                                    c_.auth_hostname + ">";
            reply("334 " + smtp::base64_encode(challenge));
            auto d = auth_read();
            if (!d) return;
            auto r = smtp::parse_cram_response(*d);
            if (!r) {
                reply("501 5.5.2 malformed auth input");
                return;
            }
            user = r->first;
            secret = challenge;
            response = r->second;
        } else {
            reply("504 5.5.4 unrecognized authentication type");
            return;
        }
        if (user.empty() || user.find('\0') != std::string::npos || secret.find('\0') != std::string::npos) {
            wipe(secret);
            reply("501 5.5.2 malformed auth input");
            return;
        }
        int status = check_password(user, secret, response, method);
        wipe(secret);
        if (status == 0 || status == 3) {
            auth_user_ = user;
            auth_may_relay_ = status == 0;
            reply("235 2.7.0 ok, go ahead");
            log("AUTH " + mech + " of " + user + ": authenticated" + (status == 3 ? ", may not relay (NO_RELAY)" : ""));
        } else if (status == 1 || status == 2) {
            refuse("AUTH " + mech + " of " + user + " failed", "535 5.7.8 authentication failed");
            count_error();
        } else {
            refuse("AUTH " + mech + " of " + user + ": the checkpassword program exited " + std::to_string(status),
                   "454 4.7.0 temporary authentication failure");
        }
    }

    static void wipe(std::string& s) noexcept {
        volatile char* p = s.data();
        for (std::size_t i = 0; i < s.size(); ++i) p[i] = 0;
        s.clear();
    }

    // Runs checkprogram subprogram... with user\0secret\0response\0method\0 on descriptor 3; its exit
    // status (-1 when it could not be run or was killed).
    int check_password(const std::string& user, const std::string& secret, const std::string& response, char method) {
        int pi[2];
        if (::pipe2(pi, O_CLOEXEC) != 0) return -1;
        pid_t pid = ::fork();
        if (pid < 0) {
            ::close(pi[0]);
            ::close(pi[1]);
            return -1;
        }
        if (pid == 0) {
            int r = ::fcntl(pi[0], F_DUPFD_CLOEXEC, 10);
            if (r < 0 || ::dup2(r, 3) < 0) ::_exit(111);
            int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (null < 0 || ::dup2(null, 0) < 0) ::_exit(111);  // never the client's connection
            ::dup2(2, 1);  // whatever the program prints goes to the log, never to the client
            ::close_range(4, ~0U, 0);  // nor a database connection of ours
            ::alarm(kAuthTimeout);     // a program that hangs is killed: a temporary failure
            ::unsetenv("AUTHORIZED");  // never a password-less lookup (vchkpass(8))
            ::unsetenv("SERVICE");
            std::vector<char*> argv;
            for (auto& a : c_.checkprogram) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            ::execvp(argv[0], argv.data());
            ::_exit(111);
        }
        ::close(pi[0]);
        std::string data = user;
        data += '\0';
        data += secret;
        data += '\0';
        data += response;
        data += '\0';
        data += method;
        data += '\0';
        std::string_view left = data;
        while (!left.empty()) {
            ssize_t n = ::write(pi[1], left.data(), left.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            left.remove_prefix(static_cast<std::size_t>(n));
        }
        wipe(data);
        ::close(pi[1]);
        int st = 0;
        while (::waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }

    const Config& c_;
    Connection io_;
    RelayPolicy policy_;
    std::unique_ptr<Store> store_;
    std::optional<std::unordered_set<std::string>> bmf_;
    std::string helo_host_;
    bool esmtp_ = false;
    bool tls_checked_ = false, tls_ok_ = false;
    bool in_mail_ = false, barf_ = false, rcpt_tried_ = false;
    std::string sender_;
    std::vector<std::string> recipients_;
    std::optional<std::string> auth_user_;
    bool auth_may_relay_ = false;
    int errors_ = 0;
};

}  // namespace

Config load_config(int argc, char** argv) {
    Config c;
    c.paths = Paths::from_env();
    const Paths& p = c.paths;
    auto me = control_first_line(p, "me");
    auto greeting = control_first_line(p, "smtpgreeting");
    if (!greeting) greeting = me;
    if (!greeting)
        throw Error(Exit::config, "neither " + p.control("smtpgreeting").string() + " nor " + p.control("me").string() +
                                      " names this host");
    c.greeting = *greeting;
    auto lip = control_first_line(p, "localiphost");
    c.localiphost = lip ? *lip : me.value_or("");
    auto noathost = control_first_line(p, "envnoathost");
    c.envnoathost = ascii_lower(noathost ? *noathost : me.value_or(""));
    c.timeout = static_cast<int>(std::max<std::uint64_t>(1, std::min<std::uint64_t>(control_number(p, "timeoutsmtpd", 1200), 86400)));
    c.databytes = control_number(p, "databytes", 0);
    if (auto v = env("DATABYTES"); v && !v->empty()) {
        auto n = parse_decimal(*v);
        if (!n) throw Error(Exit::config, "DATABYTES=" + *v + " is not a number");
        c.databytes = *n;
    }
    c.maxrcpt = control_number(p, "maxrecipients", 0);
    if (auto v = env("MAXRECIPIENTS"); v && !v->empty()) {
        auto n = parse_decimal(*v);
        if (!n) throw Error(Exit::config, "MAXRECIPIENTS=" + *v + " is not a number");
        c.maxrcpt = *n;
    }
    if (c.maxrcpt == 0) c.maxrcpt = kDefaultMaxRcpt;
    c.servercert = env("SERVERCERT").value_or(p.control("servercert.pem").string());
    if (argc >= 3) {
        c.auth_hostname = argv[1];
        for (int i = 2; i < argc; ++i) c.checkprogram.emplace_back(argv[i]);
    }
    c.insecure_auth = env("ALLOW_INSECURE_AUTH").has_value();
    c.require_auth = env("REQUIREAUTH").has_value();
    if (auto v = env("TCPREMOTEIP")) c.remoteip = *v;
    c.remotehost = env("TCPREMOTEHOST");
    c.remoteinfo = env("TCPREMOTEINFO");
    if (auto v = env("TCPLOCALHOST")) c.local = *v;
    else if (auto w = env("TCPLOCALIP")) c.local = *w;
    c.relayclient = env("RELAYCLIENT");
    c.checkrelay = env("CHECKRELAY").has_value();
    c.qmail_ext = env("QMAIL_EXT").has_value();
    return c;
}

int run_session(const Config& config) {
    Session s(config);
    return s.run();
}

}  // namespace qv::smtpd
