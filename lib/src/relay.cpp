#include "qvmail/relay.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <filesystem>

#include "qvmail/address.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/control.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/tcprules.hpp"
#include "qvmail/text.hpp"
#include "qvmail/user.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

// The first line of a control file whose key (the text before ':') equals one of `keys`, tried in
// the order of `keys`. Returns the line number, the line and the text after ':'.
struct KeyHit {
    std::uint64_t line;
    std::string text;
    std::string key;
    std::string append;
};

std::optional<KeyHit> find_key(const ControlFile& f, const std::vector<std::string>& keys) {
    for (auto& k : keys) {
        std::optional<KeyHit> hit;
        std::uint64_t n = 0;
        f.for_each_line([&](std::string_view l) {
            ++n;
            std::string_view e = control_entry(l);
            if (e.empty()) return true;
            std::size_t colon = e.find(':');
            std::string_view key = e.substr(0, colon);
            if (ascii_lower(key) != k) return true;
            hit = KeyHit{n, std::string(e), k, colon == std::string_view::npos ? "" : std::string(e.substr(colon + 1))};
            return false;
        });
        if (hit) return hit;
    }
    return std::nullopt;
}

std::vector<std::string> ip_keys(const std::string& ip) {
    std::vector<std::string> keys{ip};
    for (std::size_t len = ip.size(); len > 0; --len)
        if (ip[len - 1] == '.' && len != ip.size()) keys.push_back(ip.substr(0, len));
    return keys;
}

// A host name, then each suffix starting at a '.', lower-cased (relaydomains, rcpthosts).
std::vector<std::string> host_keys(const std::string& host) {
    std::string h = ascii_lower(host);
    std::vector<std::string> keys{h};
    for (std::size_t i = 0; i < h.size(); ++i)
        if (h[i] == '.') keys.push_back(h.substr(i));
    return keys;
}

}  // namespace

const char* relay_list_name(RelayList l) noexcept {
    switch (l) {
        case RelayList::clients:
            return "relayclients";
        case RelayList::domains:
            return "relaydomains";
        case RelayList::mailfrom:
            return "relaymailfrom";
    }
    return "?";
}

fs::path relay_list_file(const Paths& paths, RelayList l) {
    return l == RelayList::clients ? paths.relayclients : paths.control(relay_list_name(l));
}

// What the policy has read so far: each file the first time a decision needs it.
struct RelayPolicy::Files {
    std::optional<ControlFile> rcpthosts, relayclients, relaydomains, relaymailfrom;
    bool more_loaded = false, mailfrom_loaded = false, rules_loaded = false, grants_loaded = false;
    std::unique_ptr<CdbReader> more, mailfrom, rules;
    std::vector<RelayGrant> open_smtp;
};

namespace {

const ControlFile& loaded(std::optional<ControlFile>& slot, const fs::path& path) {
    if (!slot) slot = ControlFile::load(path);
    return *slot;
}

const CdbReader* loaded(bool& done, std::unique_ptr<CdbReader>& slot, const fs::path& path) {
    if (!done) {
        if (path_exists(path)) slot = std::make_unique<CdbReader>(path);
        done = true;
    }
    return slot.get();
}

}  // namespace

RelayPolicy::RelayPolicy(const Paths& paths) : paths_(paths), files_(std::make_unique<Files>()) {}
RelayPolicy::~RelayPolicy() = default;

std::optional<std::string> RelayPolicy::local_domain(const std::string& domain, std::vector<std::string>* trace) const {
    std::vector<std::string> keys = host_keys(domain);
    const ControlFile& rcpthosts = loaded(files_->rcpthosts, paths_.control("rcpthosts"));
    if (!rcpthosts.exists()) {
        if (trace)
            trace->push_back(
                "rcpthosts: control/rcpthosts is missing, so no domain is local (qvmail fails closed; "
                "qmail would accept every recipient)");
        return std::nullopt;
    }
    for (auto& k : keys)
        if (rcpthosts.contains(k)) return "control/rcpthosts: " + k;
    if (const CdbReader* more = loaded(files_->more_loaded, files_->more, paths_.control("morercpthosts.cdb")))
        for (auto& k : keys)
            if (more->find(k)) return "control/morercpthosts.cdb: " + k;
    return std::nullopt;
}

const char* RelayDecision::verdict_name() const noexcept {
    switch (verdict) {
        case relay:
            return "relay";
        case local:
            return "local";
        case refused:
            return "refused";
        case rejected:
            return "rejected";
        case denied:
            return "denied";
    }
    return "?";
}

RelayDecision decide_relay(const Paths& paths, Store* store, const RelayQuery& q, std::time_t now) {
    return RelayPolicy(paths).decide(store, q, now);
}

RelayDecision RelayPolicy::decide(Store* store, const RelayQuery& q, std::time_t now) const {
    const Paths& paths = paths_;
    RelayDecision d;
    auto decided = [&](RelayDecision::Verdict v, std::string mechanism, std::string source,
                       std::optional<std::uint64_t> line, std::string text, std::string append = "") {
        d.verdict = v;
        d.mechanism = std::move(mechanism);
        d.source = std::move(source);
        d.line = line;
        d.text = std::move(text);
        d.append = std::move(append);
        return d;
    };

    // A relay probe is refused before any relay rule is looked at, even for clients that may relay
    // (only a connection tcp.smtp refuses never gets that far).
    auto relay_probe = [&]() -> bool {
        if (!q.recipient) return false;
        std::size_t at = q.recipient->rfind('@');
        std::string local = q.recipient->substr(0, at == std::string::npos ? q.recipient->size() : at);
        if (local.find_first_of("@%!") == std::string::npos) return false;
        d.trace.push_back("relay probe: the local part of " + *q.recipient + " contains @, % or !: 550 we don't relay");
        decided(RelayDecision::rejected, "relay-probe", "", std::nullopt, *q.recipient);
        return true;
    };

    // 1. tcp.smtp: as tcpserver applied it when the client connected (qmail-smtpd: its environment),
    //    or looked up in tcp.smtp.cdb as tcpserver would (qmailctl relay test).
    fs::path rules_cdb(paths.tcp_file.string() + ".cdb");
    if (q.tcpserver) {
        if (relay_probe()) return d;
        if (q.tcpserver->relayclient) {
            d.trace.push_back("tcp.smtp: tcpserver set RELAYCLIENT for this client");
            return decided(RelayDecision::relay, "tcp.smtp", "RELAYCLIENT", std::nullopt,
                           "RELAYCLIENT=\"" + *q.tcpserver->relayclient + "\"", *q.tcpserver->relayclient);
        }
        d.trace.push_back("tcp.smtp: tcpserver set no RELAYCLIENT for this client");
    } else if (const CdbReader* db = loaded(files_->rules_loaded, files_->rules, rules_cdb)) {
        auto m = tcprules::lookup(*db, tcprules::Client{q.ip, q.host, q.info});
        std::optional<tcprules::SourceRule> origin;
        std::error_code ec;
        if (m.key && fs::exists(paths.tcp_file, ec)) origin = tcprules::find_source_rule(paths.tcp_file, *m.key);
        std::string where = !m.key           ? "no rule"
                            : m.key->empty() ? "the default rule"
                                             : "rule \"" + printable(*m.key) + "\"";
        if (m.decision.deny) {
            d.trace.push_back("tcp.smtp: " + where + " denies the connection");
            return decided(RelayDecision::denied, "tcp.smtp", paths.tcp_file.string(),
                           origin ? std::optional(origin->line) : std::nullopt, origin ? origin->text : *m.key);
        }
        if (relay_probe()) return d;
        for (auto& [name, value] : m.decision.env)
            if (name == "RELAYCLIENT") {
                // open-smtp's lines come first in the cdb: a grant of the files backend.
                if (!files_->grants_loaded) {
                    files_->open_smtp = read_open_smtp(paths.open_smtp);
                    files_->grants_loaded = true;
                }
                std::optional<RelayGrant> grant;
                for (auto& g : files_->open_smtp)
                    if (m.key && g.ip == *m.key && (!grant || g.timestamp > grant->timestamp)) grant = g;
                if (grant) {
                    std::int64_t age = static_cast<std::int64_t>(now) - grant->timestamp;
                    std::string msg = "relay-grant: " + grant->email + " logged in from " + grant->ip + " " +
                                      std::to_string(age) + " s ago (open-smtp, folded into tcp.smtp.cdb)";
                    if (age >= static_cast<std::int64_t>(paths.relay_clear_minutes) * 60)
                        msg += "; expired, but in effect until clearopensmtp runs";
                    d.trace.push_back(msg);
                    return decided(RelayDecision::relay, "relay-grant", paths.open_smtp.string(), std::nullopt,
                                   grant->email + " " + grant->ip, value);
                }
                d.trace.push_back("tcp.smtp: " + where + " sets RELAYCLIENT");
                return decided(RelayDecision::relay, "tcp.smtp", paths.tcp_file.string(),
                               origin ? std::optional(origin->line) : std::nullopt,
                               origin ? origin->text : printable(*m.key), value);
            }
        d.trace.push_back("tcp.smtp: " + where + (m.key ? " allows" : " matches: tcpserver allows") +
                          " the connection, without RELAYCLIENT");
    } else {
        d.trace.push_back("tcp.smtp: " + rules_cdb.string() + " does not exist (run qmailctl cdb)");
        if (relay_probe()) return d;
    }

    // 2. relayclients: the client IP, then its prefixes ending in '.'.
    const ControlFile& clients = loaded(files_->relayclients, relay_list_file(paths, RelayList::clients));
    if (auto hit = find_key(clients, ip_keys(q.ip))) {
        d.trace.push_back("relayclients: line " + std::to_string(hit->line) + " matches " + hit->key);
        return decided(RelayDecision::relay, "relayclients", clients.path().string(), hit->line, hit->text,
                       hit->append);
    }
    d.trace.push_back(clients.exists() ? "relayclients: no line for " + q.ip : "relayclients: no such file");

    // 3. relaydomains: the client's host name, then its suffixes starting with '.'.
    if (q.host) {
        const ControlFile& domains = loaded(files_->relaydomains, paths.control("relaydomains"));
        if (auto hit = find_key(domains, host_keys(*q.host))) {
            d.trace.push_back("relaydomains: line " + std::to_string(hit->line) + " matches " + hit->key);
            return decided(RelayDecision::relay, "relaydomains", domains.path().string(), hit->line, hit->text,
                           hit->append);
        }
        d.trace.push_back(domains.exists() ? "relaydomains: no line for " + *q.host : "relaydomains: no such file");
    } else {
        d.trace.push_back("relaydomains: the client's host name is not known");
    }

    // 4. SMTP AUTH: the checkpassword program's verdict (qmail-smtpd), or the store's flags (relay test).
    if (q.auth_user && q.auth_may_relay) {
        if (*q.auth_may_relay) {
            d.trace.push_back("smtp-auth: " + *q.auth_user + " authenticated");
            return decided(RelayDecision::relay, "smtp-auth", "the checkpassword program", std::nullopt,
                           *q.auth_user);
        }
        d.trace.push_back("smtp-auth: " + *q.auth_user + " authenticated, but may not relay (NO_RELAY)");
    } else if (q.auth_user) {
        std::optional<UserRecord> u;
        std::string why;
        try {
            Address a = parse_address(*q.auth_user);
            if (store) {
                if (auto dom = find_domain(paths, a.domain)) u = store->get_user(dom->ref(), a.local);
            }
            if (!u) why = "no such mailbox";
        } catch (const Error& e) {
            why = e.what();
        }
        if (u && (u->gid_flags & userflag::no_smtp)) {
            d.trace.push_back("smtp-auth: " + *q.auth_user + " has NO_SMTP: vchkpass refuses its SMTP AUTH");
        } else if (u && (u->gid_flags & userflag::no_relay)) {
            d.trace.push_back("smtp-auth: " + *q.auth_user + " has NO_RELAY: authenticated, may not relay");
        } else if (u) {
            d.trace.push_back("smtp-auth: " + *q.auth_user + " authenticated");
            return decided(RelayDecision::relay, "smtp-auth", store ? std::string(store->backend()) + " store" : "",
                           std::nullopt, *q.auth_user);
        } else {
            d.trace.push_back("smtp-auth: " + *q.auth_user + ": " + why);
        }
    }

    // 5. relaymailfrom: the envelope sender, then its @domain.
    if (q.sender && !q.sender->empty()) {
        std::vector<std::string> keys = sender_keys(*q.sender);
        const std::string& sender = keys.front();
        fs::path mf_cdb = paths.control("relaymailfrom.cdb");
        const CdbReader* db = loaded(files_->mailfrom_loaded, files_->mailfrom, mf_cdb);
        if (db)
            for (auto& k : keys)
                if (db->find(k)) {
                    d.trace.push_back("relaymailfrom: relaymailfrom.cdb holds " + k);
                    return decided(RelayDecision::relay, "relaymailfrom", mf_cdb.string(), std::nullopt, k);
                }
        const ControlFile& mf = loaded(files_->relaymailfrom, paths.control("relaymailfrom"));
        if (auto hit = find_key(mf, keys)) {
            d.trace.push_back("relaymailfrom: line " + std::to_string(hit->line) + " holds " + hit->key);
            return decided(RelayDecision::relay, "relaymailfrom", mf.path().string(), hit->line, hit->text);
        }
        d.trace.push_back(db || mf.exists() ? "relaymailfrom: no entry for " + sender : "relaymailfrom: no such file");
    }

    // 6. The recipient is ours: accepted, not relayed.
    if (q.recipient) {
        std::string domain = ascii_lower(q.recipient->substr(q.recipient->rfind('@') + 1));
        if (q.recipient->find('@') == std::string::npos) {
            d.trace.push_back("rcpthosts: no domain in " + *q.recipient + ": local");
            return decided(RelayDecision::local, "rcpthosts", "", std::nullopt, *q.recipient);
        }
        if (auto hit = local_domain(domain, &d.trace)) {
            d.trace.push_back("rcpthosts: " + domain + " is ours (" + *hit + ")");
            return decided(RelayDecision::local, "rcpthosts", "", std::nullopt, *hit);
        }
        d.trace.push_back("rcpthosts: " + domain + " is not ours");
    }

    // 7. POP/IMAP-before-SMTP grants (CHECKRELAY).
    if (store && store->grants_in_rules()) {
        d.trace.push_back("relay-grant: the " + std::string(store->backend()) +
                          " store's grants take effect through tcp.smtp.cdb (above)");
    } else if (store) {
        std::int64_t since = static_cast<std::int64_t>(now) - static_cast<std::int64_t>(paths.relay_clear_minutes) * 60;
        if (auto g = store->find_grant(q.ip, q.sender, since)) {
            d.trace.push_back(
                "relay-grant: " + g->email + " logged in from " + g->ip + " " + std::to_string(now - g->timestamp) +
                " s ago" +
                (q.sender ? "" : " (no sender given: CHECKRELAY also requires the sender to be " + g->email + ")"));
            return decided(RelayDecision::relay, "relay-grant", store->grants_source(), std::nullopt,
                           g->email + " " + g->ip);
        }
        d.trace.push_back("relay-grant: none for " + q.ip + " in the last " +
                          std::to_string(paths.relay_clear_minutes) + " minutes");
    }
    d.trace.push_back("refused: 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)");
    return decided(RelayDecision::refused, "", "", std::nullopt, "");
}

// ---- validation of entries ----

namespace {

[[noreturn]] void bad(std::string_view what, std::string_view text, const std::string& why) {
    throw Error(Exit::dataerr, "invalid " + std::string(what) + " '" + printable(text) + "': " + why);
}

bool is_ipv4(std::string_view s) {
    if (s.find('\0') != std::string_view::npos) return false;  // inet_pton would stop there
    unsigned char buf[4];
    return ::inet_pton(AF_INET, std::string(s).c_str(), buf) == 1;
}

// 1 to 3 octets followed by '.', e.g. "10." or "192.168.1."
bool is_ipv4_prefix(std::string_view s) {
    if (s.empty() || s.back() != '.') return false;
    std::string_view body = s.substr(0, s.size() - 1);
    int parts = 0;
    while (!body.empty()) {
        std::size_t dot = body.find('.');
        std::string_view o = body.substr(0, dot);
        if (o.empty() || o.size() > 3 || o.find_first_not_of("0123456789") != std::string_view::npos ||
            std::stoi(std::string(o)) > 255)
            return false;
        ++parts;
        if (dot == std::string_view::npos) break;
        body.remove_prefix(dot + 1);
    }
    return parts >= 1 && parts <= 3;
}

void check_append(std::string_view what, std::string_view text, std::string_view append) {
    for (char c : append)
        if (static_cast<unsigned char>(c) <= ' ' || c == ':')
            bad(what, text, "the text after ':' must not contain blanks, control characters or ':'");
}

}  // namespace

std::string relayclients_entry(std::string_view text) {
    std::size_t colon = text.find(':');
    std::string_view ip = text.substr(0, colon);
    if (!is_ipv4(ip) && !is_ipv4_prefix(ip))
        bad("relayclients entry", text, "expected an IPv4 address or a prefix ending in '.', like 192.168.1.");
    if (colon != std::string_view::npos) check_append("relayclients entry", text, text.substr(colon + 1));
    return colon == std::string_view::npos ? std::string(text) + ":" : std::string(text);
}

std::string relaydomains_entry(std::string_view text) {
    std::size_t colon = text.find(':');
    std::string host = ascii_lower(text.substr(0, colon));
    std::string_view name = host;
    if (!name.empty() && name[0] == '.') name.remove_prefix(1);
    try {
        normalize_domain(name);
    } catch (const Error&) {
        bad("relaydomains entry", text, "expected a host name or a suffix starting with '.', like .example.com");
    }
    std::string out = host + ":";
    if (colon != std::string_view::npos) {
        check_append("relaydomains entry", text, text.substr(colon + 1));
        out += text.substr(colon + 1);
    }
    return out;
}

std::vector<std::string> sender_keys(std::string_view sender) {
    std::vector<std::string> keys{ascii_lower(sender)};
    if (auto at = keys[0].rfind('@'); at != std::string::npos) keys.push_back(keys[0].substr(at));
    return keys;
}

std::string relaymailfrom_entry(std::string_view text) {
    std::string t = ascii_lower(text);
    if (!t.empty() && t[0] == '@') {
        try {
            return "@" + normalize_domain(std::string_view(t).substr(1));
        } catch (const Error&) {
            bad("relaymailfrom entry", text, "expected user@domain or @domain");
        }
    }
    try {
        return parse_address(t).str();
    } catch (const Error&) {
        bad("relaymailfrom entry", text, "expected user@domain or @domain");
    }
}

std::string tcprules_address(std::string_view text) {
    auto fail = [&] {
        bad("tcp.smtp address", text,
            "expected an IPv4 address, a prefix ending in '.', a range like 10.1.1.1-50, =host, =.domain or "
            "user@address");
    };
    if (text.empty() || text == "default") return "";  // the rule for every other client: ":allow"
    if (text[0] == '=') {
        std::string_view h = text.substr(1);
        if (h.empty()) return "=";
        if (h[0] == '.') h.remove_prefix(1);
        try {
            normalize_domain(h);
        } catch (const Error&) {
            fail();
        }
        return ascii_lower(text);
    }
    if (auto at = text.find('@'); at != std::string_view::npos) {
        // TCPREMOTEINFO, an ident answer: a user name (letters, digits, '.', '_', '-'), then one address
        std::string_view user = text.substr(0, at), rest = text.substr(at + 1);
        if (user.empty() || user[0] == '-' || rest.find('@') != std::string_view::npos) fail();
        for (char c : user)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-'))
                fail();
        std::string addr = tcprules_address(rest);
        if (addr.empty()) fail();
        return std::string(user) + "@" + addr;
    }
    if (is_ipv4(text) || is_ipv4_prefix(text)) return std::string(text);
    // a range in the last octet: a.b.c.x-y
    std::size_t dash = text.find('-');
    std::size_t dot = text.rfind('.', dash);
    if (dash == std::string_view::npos || dot == std::string_view::npos) fail();
    std::string_view lo = text.substr(dot + 1, dash - dot - 1), hi = text.substr(dash + 1);
    if (!is_ipv4(std::string(text.substr(0, dot + 1)) + std::string(lo)) || hi.empty() || hi.size() > 3 ||
        hi.find_first_not_of("0123456789") != std::string_view::npos || std::stoi(std::string(hi)) > 255 ||
        std::stoi(std::string(hi)) < std::stoi(std::string(lo)))
        fail();
    return std::string(text);
}

std::string format_rule(std::string_view address, bool deny,
                        const std::vector<std::pair<std::string, std::string>>& env) {
    std::string line(address);
    line += deny ? ":deny" : ":allow";
    for (auto& [name, value] : env) {
        char quote = 0;
        for (char q : std::string_view("\"'/|%#!+^~"))
            if (value.find(q) == std::string::npos) {
                quote = q;
                break;
            }
        if (!quote) throw Error(Exit::dataerr, "the value of " + name + " uses every quote character tcprules allows");
        line += "," + name + "=" + quote + value + quote;
    }
    return line;
}

}  // namespace qv
