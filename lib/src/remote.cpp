// Remote delivery by SMTP: smtproutes, mail exchangers, the client session and qmail-remote's reports.
// See remote.hpp.
#include "qvmail/remote.hpp"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>

#include "qvmail/address.hpp"
#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/outgoing_ip.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/text.hpp"
#include "qvmail/tls.hpp"

namespace qv {

namespace {

constexpr std::size_t kMaxReplyText = 5000;   // qmail's HUGESMTPTEXT: what of a reply is reported
constexpr std::size_t kMaxReplyLine = 4096;   // bytes kept of one reply line (the rest is read and dropped)
constexpr std::size_t kMaxReplyLines = 1000;  // lines kept of one reply (EHLO's keywords)
constexpr std::size_t kChunk = 65536;

bool host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

bool has_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 32 || u == 127;
    });
}

// A name as qmail-remote writes it in a report: bytes outside '!'..'~' become '?'.
std::string outsafe(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (static_cast<unsigned char>(c) < 33 || static_cast<unsigned char>(c) > 126) c = '?';
    return out;
}

std::optional<unsigned> parse_port(std::string_view s) {
    unsigned v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
    return v;
}

// The address in an address literal's brackets, "IPv6:" allowed before an IPv6 address; nullopt if none.
std::optional<std::string> literal_address(std::string_view inside) {
    if (inside.size() > 5 && equal_ignoring_case(inside.substr(0, 5), "ipv6:")) inside.remove_prefix(5);
    try {
        return canonical_ip(inside);
    } catch (const Error&) {
        return std::nullopt;
    }
}

}  // namespace

// ---- smtproutes ----

std::optional<SmtpRoute> parse_smtp_route(std::string_view rest, std::string* why) {
    auto fail = [&](const char* w) -> std::optional<SmtpRoute> {
        if (why) *why = w;
        return std::nullopt;
    };
    SmtpRoute r;
    std::optional<std::string_view> port;
    if (!rest.empty() && rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos) return fail("'[' without ']'");
        auto ip = literal_address(rest.substr(1, close - 1));
        if (!ip) return fail("no IP address between '[' and ']'");
        r.relay = *ip;
        r.literal = true;
        rest.remove_prefix(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return fail("text after ']' that is not :port");
            port = rest.substr(1);
        }
    } else {
        auto colon = rest.find(':');
        r.relay = ascii_lower(rest.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = rest.substr(colon + 1);
            if (port->find(':') != std::string_view::npos)
                return fail("more than one ':' after the relay (an IPv6 address is written in brackets)");
        }
        if (!std::all_of(r.relay.begin(), r.relay.end(), host_char))
            return fail("the relay is not a host name or an address");
        if (auto ip = literal_address(r.relay); ip && r.relay.find_first_not_of("0123456789.") == std::string::npos) {
            r.relay = *ip;
            r.literal = true;
        }
    }
    if (port) {
        auto p = parse_port(*port);
        if (!p) return fail("the port is not a number from 1 to 65535");
        r.port = *p;
    }
    return r;
}

SmtpRoutes SmtpRoutes::parse(std::string_view text, std::vector<std::string>* problems) {
    SmtpRoutes routes;
    std::size_t number = 0;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        ++number;
        std::string_view e = control_entry(line);
        if (e.empty()) continue;
        auto colon = e.find(':');
        std::string why;
        if (colon == std::string_view::npos) {
            why = "no ':' (domain:relay[:port])";
        } else if (auto r = parse_smtp_route(e.substr(colon + 1), &why)) {
            routes.routes_[ascii_lower(e.substr(0, colon))] = std::move(*r);  // the last line wins, as in qmail
            continue;
        }
        if (problems) problems->push_back("line " + std::to_string(number) + ": " + why + ": " + printable(e));
    }
    return routes;
}

SmtpRoutes SmtpRoutes::load(const Paths& paths, std::vector<std::string>* problems) {
    std::vector<std::string> found;
    SmtpRoutes r;
    std::string where;
    if (paths.smtproute) {
        r = parse(*paths.smtproute, &found);
        where = "SMTPROUTE";
    } else {
        ControlFile f = ControlFile::load(paths.smtproutesfile);
        r = parse(f.text(), &found);
        where = paths.smtproutesfile.string();
    }
    if (problems)
        for (auto& p : found) problems->push_back(where + ": " + p);
    return r;
}

std::optional<SmtpRoute> SmtpRoutes::lookup(std::string_view host, std::string_view sender) const {
    if (routes_.empty()) return std::nullopt;
    if (sender.empty())
        if (auto it = routes_.find("!@"); it != routes_.end()) return it->second;
    std::string h = ascii_lower(host);
    for (std::size_t i = 0; i <= h.size(); ++i) {
        if (i != 0 && i != h.size() && h[i] != '.') continue;
        if (auto it = routes_.find(h.substr(i)); it != routes_.end()) return it->second;
    }
    return std::nullopt;
}

// ---- mail exchangers ----

void order_mx(std::vector<MxRecord>& records, std::mt19937_64& rng) {
    std::shuffle(records.begin(), records.end(), rng);
    std::stable_sort(records.begin(), records.end(),
                     [](const MxRecord& a, const MxRecord& b) { return a.preference < b.preference; });
}

namespace {

enum class Lookup { ok, nodata, nxdomain, temporary };

// The MX records of `host` (in the order the answer gives them).
Lookup query_mx(const std::string& host, std::vector<MxRecord>& out) {
    struct __res_state st;
    std::memset(&st, 0, sizeof st);
    if (::res_ninit(&st) != 0) return Lookup::temporary;
    std::vector<unsigned char> answer(65536);
    int n = ::res_nquery(&st, host.c_str(), ns_c_in, ns_t_mx, answer.data(), static_cast<int>(answer.size()));
    int herr = st.res_h_errno;
    ::res_nclose(&st);
    if (n < 0) {
        if (herr == HOST_NOT_FOUND) return Lookup::nxdomain;
        if (herr == NO_DATA) return Lookup::nodata;
        return Lookup::temporary;  // TRY_AGAIN (SERVFAIL, no answer), NO_RECOVERY (REFUSED, FORMERR)
    }
    ns_msg msg;
    if (::ns_initparse(answer.data(), n, &msg) < 0) return Lookup::temporary;
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); ++i) {
        ns_rr rr;
        if (::ns_parserr(&msg, ns_s_an, i, &rr) < 0) return Lookup::temporary;
        if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in || ns_rr_rdlen(rr) < 3) continue;  // CNAMEs
        const unsigned char* rd = ns_rr_rdata(rr);
        MxRecord m;
        m.preference = static_cast<unsigned>(rd[0]) << 8 | rd[1];
        char name[NS_MAXDNAME];
        if (::dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 2, name, sizeof name) < 0) continue;
        m.name = name;
        if (m.name == ".") m.name.clear();
        out.push_back(std::move(m));
    }
    return out.empty() ? Lookup::nodata : Lookup::ok;
}

// A place to connect to.
struct Target {
    sockaddr_storage addr{};
    socklen_t len = 0;
    std::string ip;  // canonical text, for the reports
    unsigned preference = 0;
    std::string name;  // the host name it came from (SNI); empty for an address
};

// The addresses of `name` appended to `out`, but those already there (two MX names for one address).
Lookup resolve_name(const std::string& name, unsigned port, unsigned preference, std::vector<Target>& out) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    addrinfo* list = nullptr;
    int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &list);
    if (rc == EAI_NONAME) return Lookup::nxdomain;
#ifdef EAI_NODATA
    if (rc == EAI_NODATA) return Lookup::nodata;
#endif
    if (rc != 0) return Lookup::temporary;  // EAI_AGAIN, EAI_FAIL, EAI_SYSTEM, EAI_MEMORY
    std::size_t before = out.size();
    for (addrinfo* a = list; a; a = a->ai_next) {
        if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) || a->ai_addrlen > sizeof(sockaddr_storage)) continue;
        Target t;
        std::memcpy(&t.addr, a->ai_addr, a->ai_addrlen);
        t.len = a->ai_addrlen;
        char text[INET6_ADDRSTRLEN];
        const void* raw = a->ai_family == AF_INET
                              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&t.addr)->sin_addr)
                              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&t.addr)->sin6_addr);
        if (!::inet_ntop(a->ai_family, raw, text, sizeof text)) continue;
        t.ip = text;
        if (a->ai_family == AF_INET)
            reinterpret_cast<sockaddr_in*>(&t.addr)->sin_port = htons(static_cast<std::uint16_t>(port));
        else
            reinterpret_cast<sockaddr_in6*>(&t.addr)->sin6_port = htons(static_cast<std::uint16_t>(port));
        t.preference = preference;
        t.name = name;
        if (std::none_of(out.begin(), out.end(), [&](const Target& o) { return o.ip == t.ip; }))
            out.push_back(std::move(t));
    }
    ::freeaddrinfo(list);
    return out.size() > before ? Lookup::ok : Lookup::nodata;
}

// An address in text as a Target (no name: no SNI).
std::optional<Target> address_target(const std::string& ip, unsigned port) {
    Target t;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&t.addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&t.addr);
    if (::inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(port));
        t.len = sizeof *v4;
    } else if (::inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(port));
        t.len = sizeof *v6;
    } else {
        return std::nullopt;
    }
    t.ip = canonical_ip(ip);
    return t;
}

bool is_me(const std::string& ip) {
    return ip == "0.0.0.0" || ip == "::" || is_local_address(ip);
}

// Where to connect, in order; or the failure that ends the delivery.
struct Targets {
    std::vector<Target> list;
    std::optional<RemoteResult> failure;
};

Targets find_targets(const RemoteMessage& m, const std::optional<SmtpRoute>& route) {
    Targets t;
    auto fail = [&](char code, const std::string& text) {
        t.failure = remote_failure(code, text);
        return std::move(t);
    };
    const std::string host = ascii_lower(m.host);
    const unsigned port = route ? route->port : kSmtpPort;
    if (route && !route->relay.empty()) {  // smtproutes: no MX lookup, and every address is tried
        if (route->literal) {
            t.list.push_back(*address_target(route->relay, port));
            return t;
        }
        switch (resolve_name(route->relay, port, 0, t.list)) {
            case Lookup::ok:
                return t;
            case Lookup::temporary:
                return fail('Z', "Sorry, I couldn't find any host by that name. (#4.1.2)");
            default:  // a mistake in smtproutes defers the mail until it is mended (qmail bounces it)
                return fail('Z', "Sorry, I couldn't find the smtproutes relay " + outsafe(route->relay) + ". (#4.4.3)");
        }
    }
    if (!host.empty() && host.front() == '[') {  // an address literal: as it is
        std::optional<Target> a;
        if (host.back() == ']')
            if (auto ip = literal_address(std::string_view(host).substr(1, host.size() - 2)))
                a = address_target(*ip, port);
        if (!a) return fail('D', "Sorry, I couldn't find any host named " + outsafe(m.host) + ". (#5.1.2)");
        t.list.push_back(std::move(*a));
    } else {
        std::vector<MxRecord> mx;
        switch (query_mx(host, mx)) {
            case Lookup::nxdomain:
                return fail('D', "Sorry, I couldn't find any host named " + outsafe(m.host) + ". (#5.1.2)");
            case Lookup::temporary:
                return fail('Z', "Sorry, I couldn't find any host by that name. (#4.1.2)");
            case Lookup::nodata:
                switch (resolve_name(host, port, 0, t.list)) {
                    case Lookup::ok:
                        break;
                    case Lookup::temporary:
                        return fail('Z', "Sorry, I couldn't find any host by that name. (#4.1.2)");
                    default:
                        return fail('D', "Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)");
                }
                break;
            case Lookup::ok: {
                if (mx.size() == 1 && mx[0].name.empty())
                    return fail('D', "Sorry, " + outsafe(m.host) +
                                         " accepts no mail: its MX record is \".\" (RFC 7505). (#5.1.10)");
                thread_local std::mt19937_64 rng{std::random_device{}()};
                order_mx(mx, rng);
                bool soft = false;
                for (auto& r : mx)
                    if (!r.name.empty() && resolve_name(r.name, port, r.preference, t.list) == Lookup::temporary)
                        soft = true;
                if (t.list.empty()) {
                    if (soft) return fail('Z', "Sorry, I couldn't find any host by that name. (#4.1.2)");
                    return fail('D', "Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)");
                }
                break;
            }
        }
    }
    // When this host is one of the exchangers, only the better ones (qmail's loop check).
    unsigned prefme = ~0u;
    for (auto& a : t.list)
        if (a.preference < prefme && is_me(a.ip)) prefme = a.preference;
    if (prefme != ~0u) {
        std::erase_if(t.list, [&](const Target& a) { return a.preference >= prefme; });
        if (t.list.empty())
            return fail('D',
                        "Sorry. Although I'm listed as a best-preference MX or A for that host,\n"
                        "it isn't in my control/locals file, so I don't treat it as local. (#5.4.6)");
    }
    return t;
}

// ---- the connection ----

struct Reply {
    int code = 0;
    std::string text;                // every line with '\n', CR dropped, NUL as '?', at most kMaxReplyText
    std::vector<std::string> lines;  // without CR LF
};

class Connection {
public:
    Connection(int fd, int timeout) : fd_(fd), timeout_(timeout) {}
    ~Connection() {
        tls_.reset();  // close_notify
        ::close(fd_);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    int fd() const noexcept { return fd_; }
    bool tls() const noexcept { return tls_ != nullptr; }
    void start_tls(std::unique_ptr<TlsStream> t) {
        tls_ = std::move(t);
        pos_ = len_ = 0;  // nothing the server sent in clear counts after STARTTLS
    }

    // Whether all of `data` was written.
    bool send(std::string_view data) {
        if (tls_) return tls_->write(data, timeout_);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_);
        while (!data.empty()) {
            ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n > 0) {
                data.remove_prefix(static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (!wait(POLLOUT, deadline)) return false;
                continue;
            }
            return false;
        }
        return true;
    }

    // One reply, all its lines; false when the connection died or timed out.
    bool reply(Reply& r) {
        r = Reply{};
        bool malformed = false;
        for (bool first = true;; first = false) {
            std::string line;
            char c;
            for (;;) {
                if (!get(c)) return false;
                if (c == '\n') break;
                if (c != '\r' && line.size() < kMaxReplyLine) line += c;
            }
            for (char ch : line) {
                if (r.text.size() >= kMaxReplyText) break;
                r.text += ch == '\0' ? '?' : ch;
            }
            if (r.text.size() < kMaxReplyText) r.text += '\n';
            int code = 0;
            if (line.size() >= 3 &&
                std::all_of(line.begin(), line.begin() + 3, [](char d) { return d >= '0' && d <= '9'; }))
                code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
            else
                malformed = true;
            if (first) r.code = code;
            bool more = line.size() > 3 && line[3] == '-';
            if (line.size() > 3 && !more && line[3] != ' ') malformed = true;
            if (r.lines.size() < kMaxReplyLines) r.lines.push_back(std::move(line));
            if (!more) break;
        }
        if (malformed || r.code < 200) r.code = 400;  // not SMTP: try again later (as IndiMail)
        return true;
    }

private:
    bool wait(short events, std::chrono::steady_clock::time_point deadline) {
        for (;;) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{fd_, events, 0};
            int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1 << 30)));
            if (n > 0) return true;
            if (n < 0 && errno != EINTR) return false;
        }
    }
    bool get(char& c) {
        if (pos_ == len_) {
            ssize_t n;
            if (tls_) {
                n = tls_->read(buf_, sizeof buf_, timeout_);
            } else {
                auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_);
                for (;;) {
                    n = ::recv(fd_, buf_, sizeof buf_, 0);
                    if (n >= 0) break;
                    if (errno == EINTR) continue;
                    if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait(POLLIN, deadline)) continue;
                    break;  // an error, or nothing for `timeout_` seconds
                }
            }
            if (n <= 0) return false;
            pos_ = 0;
            len_ = static_cast<std::size_t>(n);
        }
        c = buf_[pos_++];
        return true;
    }

    int fd_;
    int timeout_;
    char buf_[4096];
    std::size_t pos_ = 0, len_ = 0;
    std::unique_ptr<TlsStream> tls_;
};

// A connected socket to `t`, bound to `source` first when it is of the same family; -1 when the
// connection could not be made, -2 (errno set) when binding failed.
int connect_to(const Target& t, const std::optional<Target>& source, int timeout) {
    int family = t.addr.ss_family;
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (source && source->addr.ss_family == family &&
        ::bind(fd, reinterpret_cast<const sockaddr*>(&source->addr), source->len) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        return -2;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), t.len) == 0) return fd;
    if (errno != EINPROGRESS) {
        ::close(fd);
        return -1;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLOUT, 0};
        int n = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
        if (n < 0 && errno == EINTR) continue;
        int err = 0;
        socklen_t len = sizeof err;
        if (n > 0 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) return fd;
        ::close(fd);
        return -1;
    }
}

// An address for MAIL FROM and RCPT TO: the local part quoted unless it is a dot-atom (RFC 5321).
std::string smtp_path(std::string_view address) {
    auto at = address.rfind('@');
    if (at == std::string_view::npos) return std::string(address);
    std::string_view local = address.substr(0, at);
    auto atext = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               static_cast<unsigned char>(c) >= 0x80 ||
               std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
    };
    bool dot_atom = !local.empty() && local.front() != '.' && local.back() != '.' &&
                    local.find("..") == std::string_view::npos &&
                    std::all_of(local.begin(), local.end(), [&](char c) { return c == '.' || atext(c); });
    if (dot_atom) return std::string(address);
    std::string out = "\"";
    for (char c : local) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    out += address.substr(at);
    return out;
}

// What became of one connection.
enum class Outcome {
    done,             // the result is final
    greeting_failed,  // try the next address (the result says why, should none be better)
    tls_failed,       // the STARTTLS handshake failed: once more in clear
};

class Session {
public:
    Session(Connection& c, const RemoteConfig& config, const RemoteMessage& m, const Target& t, int message_fd,
            RemoteResult& result)
        : c_(c), config_(config), m_(m), t_(t), message_fd_(message_fd), r_(result) {}

    Outcome run(bool tls_on_connect, bool offer_starttls) {
        r_ = RemoteResult{};
        r_.partner = t_.ip;
        if (tls_on_connect) {
            try {
                auto tls = TlsStream::client();
                tls->connect(c_.fd(), c_.fd(), config_.timeout, sni());
                tls_used(*tls);
                c_.start_tls(std::move(tls));
            } catch (const Error& e) {
                r_.code = 'Z';
                r_.text = "TLS connect failed: " + tls_why(e) + "; connected to " + t_.ip + ".\n";
                return Outcome::done;
            }
        }
        Reply reply;
        if (!c_.reply(reply)) {
            dropped();
            return Outcome::greeting_failed;
        }
        if (reply.code != 220) {
            quit('Z', "Connected to " + t_.ip + " but greeting failed", reply.text);
            return Outcome::greeting_failed;
        }
        if (!hello()) return Outcome::done;
        if (offer_starttls && !c_.tls() && offers("STARTTLS")) {
            std::unique_ptr<TlsStream> tls;
            try {
                tls = TlsStream::client();
            } catch (const Error&) {  // no libssl: in clear
            }
            if (tls) {
                if (!c_.send("STARTTLS\r\n") || !c_.reply(reply)) {
                    dropped();
                    return Outcome::done;
                }
                if (reply.code == 220) {  // else the server changed its mind: in clear
                    try {
                        tls->connect(c_.fd(), c_.fd(), config_.timeout, sni());
                    } catch (const Error& e) {
                        r_.code = 'Z';
                        r_.text = "TLS connect failed: " + tls_why(e) + "; connected to " + t_.ip + ".\n";
                        return Outcome::tls_failed;
                    }
                    tls_used(*tls);
                    c_.start_tls(std::move(tls));
                    if (!hello()) return Outcome::done;
                }
            }
        }
        transaction();
        return Outcome::done;
    }

private:
    std::string sni() const {
        std::string n = t_.name;
        if (!n.empty() && n.back() == '.') n.pop_back();
        return n;
    }
    static std::string tls_why(const Error& e) {
        std::string w = e.what();
        const std::string prefix = "TLS handshake failed: ";
        return w.compare(0, prefix.size(), prefix) == 0 ? w.substr(prefix.size()) : w;
    }
    void tls_used(const TlsStream& tls) { r_.tls = tls.protocol() + " " + tls.cipher(); }

    bool offers(std::string_view keyword) const {
        return std::find(extensions_.begin(), extensions_.end(), keyword) != extensions_.end();
    }

    // The connection died: qmail's dropped().
    void dropped() {
        r_.code = 'Z';
        r_.text = "Connected to " + t_.ip + " but connection died. " + (critical_ ? "Possible duplicate! " : "") +
                  "(#4.4.2)\n";
    }

    // qmail's quit(): QUIT without waiting, and the report with what the server said last.
    void quit(char code, const std::string& what, const std::string& said) {
        c_.send("QUIT\r\n");
        r_.code = code;
        r_.text = what + ".\n";
        if (!said.empty()) r_.text += "Remote host said: " + said;
    }

    // EHLO, or HELO when EHLO is refused; false when the session is over (the result says why).
    bool hello() {
        extensions_.clear();
        Reply reply;
        if (!c_.send("EHLO " + config_.helohost + "\r\n") || !c_.reply(reply)) {
            dropped();
            return false;
        }
        if (reply.code == 250) {
            for (std::size_t i = 1; i < reply.lines.size(); ++i) {
                std::string_view l = reply.lines[i];
                if (l.size() <= 4) continue;
                l.remove_prefix(4);
                extensions_.push_back(ascii_upper(l.substr(0, l.find_first_of(" =\t"))));
            }
            return true;
        }
        if (!c_.send("HELO " + config_.helohost + "\r\n") || !c_.reply(reply)) {
            dropped();
            return false;
        }
        if (reply.code == 250) return true;
        quit(reply.code >= 500 ? 'D' : 'Z', "Connected to " + t_.ip + " but my name was rejected", reply.text);
        return false;
    }

    void transaction() {
        Reply reply;
        std::string mail = "MAIL FROM:<" + smtp_path(m_.sender) + ">";
        if (m_.size && offers("SIZE")) mail += " SIZE=" + std::to_string(*m_.size);
        if (!c_.send(mail + "\r\n") || !c_.reply(reply)) return dropped();
        if (reply.code >= 400)
            return quit(reply.code >= 500 ? 'D' : 'Z', "Connected to " + t_.ip + " but sender was rejected",
                        reply.text);
        bool bother = false;
        for (auto& rcpt : m_.recipients) {
            if (has_control(rcpt)) {
                r_.recipients.push_back(
                    {'h', "Sorry, I don't send an address with a control character in it. (#5.1.3)\n"});
                continue;
            }
            if (!c_.send("RCPT TO:<" + smtp_path(rcpt) + ">\r\n") || !c_.reply(reply)) return dropped();
            if (reply.code >= 400) {
                r_.recipients.push_back({reply.code >= 500 ? 'h' : 's',
                                         t_.ip + " does not like recipient.\nRemote host said: " + reply.text});
            } else {
                r_.recipients.push_back({'r', ""});
                bother = true;
            }
        }
        if (!bother) return quit('D', "Giving up on " + t_.ip, "");  // what the server said is reported already
        if (!c_.send("DATA\r\n") || !c_.reply(reply)) return dropped();
        if (reply.code >= 400)
            return quit(reply.code >= 500 ? 'D' : 'Z', t_.ip + " failed on DATA command", reply.text);
        if (!blast()) return;
        if (!c_.reply(reply)) return dropped();
        critical_ = false;
        if (reply.code >= 400)
            return quit(reply.code >= 500 ? 'D' : 'Z', t_.ip + " failed after I sent the message", reply.text);
        quit('K', t_.ip + " accepted message", reply.text);
    }

    // The extra header text and the message, CRLF and dot-stuffed, then the final dot; false when the
    // session is over (the result says why).
    bool blast() {
        std::string out;
        out.reserve(kChunk * 2 + 8);
        bool sol = true;  // at the start of a line
        auto convert = [&](std::string_view in) {
            for (char ch : in) {
                if (sol && ch == '.') out += '.';
                if (ch == '\n') {
                    out += "\r\n";
                    sol = true;
                } else {
                    out += ch;
                    sol = false;
                }
            }
        };
        convert(m_.qqeh);
        std::vector<char> in(kChunk);
        for (;;) {
            ssize_t n = ::read(message_fd_, in.data(), in.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                r_.code = 'Z';
                r_.text = "Unable to read message. (#4.3.0)\n";  // the connection closes without the final dot
                return false;
            }
            if (n == 0) break;
            convert(std::string_view(in.data(), static_cast<std::size_t>(n)));
            if (out.size() >= kChunk) {
                if (!c_.send(out)) {
                    dropped();
                    return false;
                }
                out.clear();
            }
        }
        if (!sol) out += "\r\n";  // a partial final line is completed (qmail refuses the message)
        out += ".\r\n";
        critical_ = true;
        if (!c_.send(out)) {
            dropped();
            return false;
        }
        return true;
    }

    Connection& c_;
    const RemoteConfig& config_;
    const RemoteMessage& m_;
    const Target& t_;
    int message_fd_;
    RemoteResult& r_;
    std::vector<std::string> extensions_;  // EHLO keywords, upper-cased
    bool critical_ = false;                // the final dot has gone: a dead connection may mean a duplicate
};

// The source address for `host` (nullopt: the kernel chooses); `failure` set when there is none to use.
std::optional<Target> outgoing_source(const Paths& paths, const std::string& host,
                                      std::optional<RemoteResult>& failure) {
    std::string ip;
    try {
        std::string h;
        try {
            h = outgoingip_host(host);
        } catch (const Error&) {  // not a file name: only OUTGOINGIP and control/outgoingip apply
        }
        if (!h.empty()) {
            ip = choose_outgoing_ip(paths, h).ip;
        } else if (paths.outgoingip) {
            ip = *paths.outgoingip;
        } else {
            auto entries = outgoingip_entries(outgoingip_file(paths, std::nullopt));
            thread_local std::mt19937_64 rng{std::random_device{}()};
            if (!entries.empty()) ip = entries[std::uniform_int_distribution<std::size_t>(0, entries.size() - 1)(rng)];
        }
    } catch (const Error& e) {
        failure = remote_failure('Z', std::string("Unable to read control files: ") + e.what() + ". (#4.3.0)");
        return std::nullopt;
    }
    if (ip.empty()) return std::nullopt;
    auto t = address_target(ip, 0);
    if (!t)
        failure = remote_failure('Z', "Sorry, the outgoing address " + outsafe(ip) + " is not an IP address. (#4.3.0)");
    return t;
}

}  // namespace

RemoteResult remote_failure(char code, std::string_view text) {
    RemoteResult r;
    r.code = code;
    r.text = std::string(text) + "\n";
    return r;
}

RemoteConfig RemoteConfig::load(const Paths& paths) {
    RemoteConfig c;
    auto first = [&](const char* name) { return control_first_line(paths, name); };
    auto seconds = [&](const char* name, int dflt) {
        auto v = control_number(paths, name, static_cast<std::uint64_t>(dflt));
        if (v == 0 || v > 86400 * 7)
            throw Error(Exit::config, paths.control(name).string() + ": not a number of seconds from 1 to 604800");
        return static_cast<int>(v);
    };
    c.timeout_connect = seconds("timeoutconnect", 60);
    c.timeout = seconds("timeoutremote", 1200);
    if (auto h = first("helohost"))
        c.helohost = *h;
    else if (auto me = first("me"))
        c.helohost = *me;
    else {
        char name[256] = {};
        if (::gethostname(name, sizeof name - 1) != 0 || !name[0]) std::strcpy(name, "localhost");
        c.helohost = name;
    }
    c.routes = SmtpRoutes::load(paths, &c.route_problems);
    return c;
}

RemoteResult deliver_remote(const Paths& paths, const RemoteConfig& config, const RemoteMessage& m, int message_fd) {
    if (has_control(m.sender))
        return remote_failure('D', "Sorry, I don't send a sender address with a control character in it. (#5.1.7)");
    if (m.recipients.empty()) return remote_failure('D', "I (qmail-remote) was invoked improperly. (#5.3.5)");
    std::optional<SmtpRoute> route = config.routes.lookup(m.host, m.sender);
    Targets targets = find_targets(m, route);
    if (targets.failure) return std::move(*targets.failure);
    std::optional<RemoteResult> failure;
    std::optional<Target> source = outgoing_source(paths, ascii_lower(m.host), failure);
    if (failure) return std::move(*failure);
    const bool smtps = route && route->tls_on_connect();
    std::optional<RemoteResult> best;  // a failed greeting, reported when no later address does better
    for (const Target& t : targets.list) {
        for (bool starttls : {true, false}) {
            int fd = connect_to(t, source, config.timeout_connect);
            if (fd == -2)
                return remote_failure('Z', "Sorry, I couldn't bind to the outgoing address " + source->ip + ": " +
                                               std::strerror(errno) + ". (#4.3.0)");
            if (fd < 0) break;
            Connection c(fd, config.timeout);
            RemoteResult r;
            Outcome o = Session(c, config, m, t, message_fd, r).run(smtps, starttls);
            if (o == Outcome::done) return r;
            if (o == Outcome::greeting_failed) {
                best = std::move(r);
                break;
            }
            // tls_failed: once more, on a new connection, in clear
        }
    }
    if (best) return std::move(*best);
    return remote_failure('Z', "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)");
}

std::string format_reports(const RemoteResult& r) {
    std::string out;
    for (auto& rcpt : r.recipients) {
        out += rcpt.code;
        out += rcpt.text;
        out += '\0';
    }
    out += r.code;
    out += r.text;
    out += '\0';
    return out;
}

SpawnResult fold_remote_output(std::string_view s, int wstat) {
    if (!WIFEXITED(wstat)) return {'Z', "qmail-remote crashed.\n"};
    if (WEXITSTATUS(wstat) == 111) return {'Z', "Unable to run qmail-remote.\n"};
    if (WEXITSTATUS(wstat) != 0) return {'D', "Unable to run qmail-remote.\n"};
    if (s.empty()) return {'Z', "qmail-remote produced no output.\n"};

    // the message result: the first report that is K, Z or D (none: D)
    int result = -1;
    for (std::size_t j = 0, k = 0; k < s.size(); ++k) {
        if (s[k] != '\0') continue;
        if (s[j] == 'K' || s[j] == 'Z') {
            result = s[j] == 'K' ? 1 : 0;
            break;
        }
        if (s[j] == 'D') break;
        j = k + 1;
    }
    // the first recipient's verdict overrides it
    int verdict = s[0] == 's' ? 0 : s[0] == 'h' ? -1 : result;
    SpawnResult out;
    out.code = verdict == 1 ? 'K' : verdict == 0 ? 'Z' : 'D';
    // the first report's text, then the message report's when the message did no better than the verdict
    auto end = s.find('\0', 1);
    if (end == std::string_view::npos) return out;
    out.text = std::string(s.substr(1, end - 1));
    std::size_t next = end + 1;
    if (result <= verdict && next < s.size() && (s[next] == 'K' || s[next] == 'Z' || s[next] == 'D')) {
        std::string_view rest = s.substr(next + 1);
        out.text += rest.substr(0, rest.find('\0'));
    }
    return out;
}

}  // namespace qv
