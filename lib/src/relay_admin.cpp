// Editing the relay configuration: tcp.smtp rules with their cdb, the relay control files, and the
// POP/IMAP-before-SMTP grants. See relay.hpp.
#include <arpa/inet.h>

#include <algorithm>
#include <cstdlib>

#include "qvmail/address.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/cdb_sources.hpp"
#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/relay.hpp"
#include "qvmail/store.hpp"
#include "qvmail/tcprules.hpp"
#include "qvmail/text.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

fs::path tcp_cdb(const Paths& paths) {
    return fs::path(paths.tcp_file.string() + ".cdb");
}

// Writes tcp.smtp (when `text` is given), open-smtp (when `grants` is given) and tcp.smtp.cdb,
// compiled from the grants followed by the rules, in one transaction: all of them or none. The rules
// are checked first on their own, so that an error names tcp.smtp's own line numbers.
std::vector<std::string> publish_tcp(const Paths& paths, const std::optional<std::string>& text,
                                     const std::optional<std::vector<RelayGrant>>& grants, bool dry_run) {
    std::string rules = text ? *text : ControlFile::load(paths.tcp_file).text();
    {
        LineReader in = LineReader::from_text(rules, paths.tcp_file);
        CdbCounter counter;
        tcprules::compile(in, counter);
    }
    std::string prefix = grant_rules(grants ? *grants : read_open_smtp(paths.open_smtp), rules);
    FileTransaction tx(dry_run);
    tx.make_dir(paths.etc_dir(), 0755);  // a fresh QMAILHOME may have none yet
    if (text) tx.write(paths.tcp_file, *text, 0644);
    if (grants) tx.write(paths.open_smtp, format_open_smtp(*grants), 0644);
    stage_cdb(tx, paths.tcp_file, tcp_cdb(paths), prefix + rules, tcprules::compile);
    if (!dry_run) tx.commit();
    return tx.log();
}

bool valid_env_name(std::string_view n) {
    if (n.empty() || (n[0] >= '0' && n[0] <= '9')) return false;
    for (char c : n)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

std::string list_key(RelayList l, std::string_view entry) {
    if (l == RelayList::mailfrom) return std::string(entry);
    return std::string(entry.substr(0, entry.find(':')));
}

}  // namespace

std::vector<TcpRule> list_tcp_rules(const Paths& paths) {
    std::vector<TcpRule> out;
    if (!path_exists(paths.tcp_file)) return out;
    LineReader in(paths.tcp_file);
    std::string_view line;
    std::string value;
    while (in.next(line)) {
        tcprules::ParsedLine p = tcprules::parse_line(line, value);
        if (!p.error.empty())
            throw ParseError(paths.tcp_file, in.line_number(), std::string(p.error), std::string(line));
        if (p.kind != tcprules::LineKind::rule) continue;
        TcpRule r;
        r.line = in.line_number();
        r.address = p.address;
        r.deny = p.deny;
        r.env = tcprules::decode(value).env;
        r.text = tcprules::strip_trailing(line);
        out.push_back(std::move(r));
    }
    return out;
}

std::vector<std::string> add_tcp_rule(const Paths& paths, const std::string& address, bool deny,
                                      const std::vector<std::pair<std::string, std::string>>& env, bool dry_run) {
    std::string addr = tcprules_address(address);
    for (auto& [name, value] : env) {
        if (!valid_env_name(name))
            throw Error(Exit::dataerr, "invalid variable name '" + printable(name) +
                                           "': letters, digits and '_', not starting with a digit");
        if (value.find_first_of(std::string_view("\n\0", 2)) != std::string::npos)
            throw Error(Exit::dataerr, "the value of " + name + " contains a newline or NUL");
    }
    for (auto& r : list_tcp_rules(paths))
        if (r.address == addr)
            throw Error(Exit::exists, paths.tcp_file.string() + ":" + std::to_string(r.line) + ": a rule for " +
                                          (addr.empty() ? "every other client" : addr) +
                                          " exists already: " + printable(r.text) + " (remove it first)");
    ControlFile f = ControlFile::load(paths.tcp_file);
    f.add(format_rule(addr, deny, env));
    return publish_tcp(paths, f.text(), std::nullopt, dry_run);
}

std::vector<std::string> remove_tcp_rule(const Paths& paths, const std::string& address, bool dry_run) {
    std::string addr = tcprules_address(address);
    std::vector<std::uint64_t> lines;
    for (auto& r : list_tcp_rules(paths))
        if (r.address == addr) lines.push_back(r.line);
    if (lines.empty())
        throw Error(Exit::missing,
                    paths.tcp_file.string() + ": no rule for " + (addr.empty() ? "every other client" : addr));
    ControlFile f = ControlFile::load(paths.tcp_file);
    std::string text;
    std::uint64_t n = 0, next = 0;
    f.for_each_line([&](std::string_view l) {
        ++n;
        if (next < lines.size() && lines[next] == n) {
            ++next;
        } else {
            text.append(l);
            text += '\n';
        }
        return true;
    });
    return publish_tcp(paths, text, std::nullopt, dry_run);
}

std::string relay_list_entry(RelayList l, std::string_view text) {
    switch (l) {
        case RelayList::clients:
            return relayclients_entry(text);
        case RelayList::domains:
            return relaydomains_entry(text);
        case RelayList::mailfrom:
            return relaymailfrom_entry(text);
    }
    return std::string(text);
}

std::vector<std::string> relay_list_entries(const Paths& paths, RelayList l) {
    return ControlFile::load(relay_list_file(paths, l)).entries();
}

namespace {

std::vector<std::string> publish_list(const Paths& paths, RelayList l, const ControlFile& f, bool dry_run) {
    FileTransaction tx(dry_run);
    tx.make_dir(f.path().parent_path(), 0755);
    tx.write(f.path(), f.text(), 0644);
    if (l == RelayList::mailfrom)
        stage_cdb(tx, f.path(), paths.control("relaymailfrom.cdb"), f.text(), compile_lowercase_lines);
    if (!dry_run) tx.commit();
    return tx.log();
}

// The first line whose entry has `key` (the whole entry for relaymailfrom, the text before ':'
// otherwise; compared case-insensitively except for relayclients).
std::optional<std::pair<std::uint64_t, std::string>> find_list_key(const ControlFile& f, RelayList l,
                                                                   const std::string& key) {
    std::optional<std::pair<std::uint64_t, std::string>> hit;
    std::uint64_t n = 0;
    f.for_each_line([&](std::string_view line) {
        ++n;
        std::string_view e = control_entry(line);
        if (e.empty()) return true;
        std::string k = list_key(l, e);
        if (l != RelayList::clients) ascii_lower_in_place(k);
        if (k != key) return true;
        hit = std::make_pair(n, std::string(e));
        return false;
    });
    return hit;
}

}  // namespace

std::vector<std::string> relay_list_add(const Paths& paths, RelayList l, const std::string& entry, bool dry_run) {
    std::string e = relay_list_entry(l, entry);
    ControlFile f = ControlFile::load(relay_list_file(paths, l));
    if (auto hit = find_list_key(f, l, list_key(l, e)))
        throw Error(Exit::exists, f.path().string() + ":" + std::to_string(hit->first) + ": " + list_key(l, e) +
                                      " is listed already: " + printable(hit->second) + " (remove it first)");
    f.add(e);
    return publish_list(paths, l, f, dry_run);
}

std::vector<std::string> relay_list_remove(const Paths& paths, RelayList l, const std::string& entry, bool dry_run) {
    std::string key = list_key(l, relay_list_entry(l, entry));
    ControlFile f = ControlFile::load(relay_list_file(paths, l));
    std::size_t removed = 0;
    while (auto hit = find_list_key(f, l, key)) {
        std::size_t n = f.remove(hit->second);
        if (n == 0) break;  // cannot happen (the same entry rule on both sides), but never loop
        removed += n;
    }
    if (!removed) throw Error(Exit::missing, f.path().string() + ": no entry for " + key);
    return publish_list(paths, l, f, dry_run);
}

std::string grant_ip(std::string_view text) {
    return canonical_ip(text);
}

namespace {

// The address as the store keeps it. The files store's grants are tcp.smtp rules, and tcprules
// addresses are IPv4 only (a ':' ends the address): IPv6 addresses are refused there.
std::string store_ip(const Store& store, std::string_view text) {
    std::string ip = grant_ip(text);
    if (store.grants_in_rules() && ip.find(':') != std::string::npos)
        throw Error(Exit::dataerr, "IPv6 address " + ip +
                                       ": the files store keeps relay grants as tcp.smtp rules, which hold IPv4 "
                                       "addresses only (the MariaDB store keeps IPv6 grants)");
    return ip;
}

}  // namespace

std::vector<std::string> grant_relay(const Paths& paths, Store& store, const std::string& email, const std::string& ip,
                                     std::time_t now, bool dry_run) {
    RelayGrant g{parse_address(email).str(), store_ip(store, ip), static_cast<std::int64_t>(now)};
    std::vector<std::string> steps{"record a relay grant for " + g.email + " from " + g.ip + " in " +
                                   store.grants_source()};
    if (!store.grants_in_rules()) {
        if (!dry_run) store.record_grant(g);
        return steps;
    }
    // files: open-smtp and tcp.smtp.cdb change together; a client tcp.smtp denies gets no grant
    std::vector<RelayGrant> shut;
    grant_rules({g}, ControlFile::load(paths.tcp_file).text(), &shut);
    if (!shut.empty())
        throw Error(Exit::noperm, paths.tcp_file.string() + " denies " + g.ip +
                                      ": a login does not open a client the rules shut out");
    std::vector<RelayGrant> grants;
    for (auto& old : read_open_smtp(paths.open_smtp))
        if (old.ip != g.ip) grants.push_back(old);  // one grant an IP, as the cdb has one rule a key
    grants.push_back(g);
    for (auto& s : publish_tcp(paths, std::nullopt, grants, dry_run)) steps.push_back(s);
    return steps;
}

std::uint64_t revoke_relay(const Paths& paths, Store& store, const std::string& ip,
                           const std::optional<std::string>& email, bool dry_run, std::vector<std::string>& steps) {
    std::string addr = store_ip(store, ip);
    std::optional<std::string> who;
    if (email) who = parse_address(*email).str();
    std::uint64_t n = 0;
    std::vector<RelayGrant> kept;
    if (store.grants_in_rules() || dry_run) {
        for (auto& g : store.list_grants()) {
            if (g.ip == addr && (!who || *who == g.email))
                ++n;
            else
                kept.push_back(g);
        }
    } else {
        n = store.revoke_grants(addr, who);
    }
    steps.push_back("remove " + std::to_string(n) + " relay grant(s) for " + addr + (who ? " and " + *who : "") +
                    " from " + store.grants_source());
    // files: open-smtp and tcp.smtp.cdb change together
    if (n && store.grants_in_rules())
        for (auto& s : publish_tcp(paths, std::nullopt, kept, dry_run)) steps.push_back(s);
    return n;
}

ClearResult clear_open_smtp(const Paths& paths, Store* store, const ClearOptions& opts, std::time_t now) {
    ClearResult r;
    std::int64_t cutoff = static_cast<std::int64_t>(now) - static_cast<std::int64_t>(opts.minutes) * 60;
    std::optional<std::vector<RelayGrant>> kept;  // the files store's grants, written with the cdb
    if (opts.purge) {
        if (!store) throw Error(Exit::software, "clear_open_smtp: no store to purge");
        if (store->grants_in_rules()) {
            kept.emplace();
            for (auto& g : store->list_grants()) {
                if (g.timestamp <= cutoff)
                    ++r.deleted;
                else
                    kept->push_back(g);
            }
            r.kept = kept->size();
            r.batches = 1;
        } else if (opts.dry_run) {
            for (auto& g : store->list_grants()) (g.timestamp <= cutoff ? r.deleted : r.kept)++;
        } else {
            PurgeResult p = store->purge_grants(cutoff, opts.batch, opts.progress);
            r.deleted = p.deleted;
            r.kept = p.kept;
            r.batches = p.batches;
        }
        r.steps.push_back("remove " + std::to_string(r.deleted) + " relay grant(s) older than " +
                          std::to_string(opts.minutes) + " min from " + store->grants_source() + ", keep " +
                          std::to_string(r.kept));
    }
    if (opts.rebuild && (path_exists(paths.tcp_file) || path_exists(paths.open_smtp))) {
        // files: the purged open-smtp and the cdb built from it go in place together
        for (auto& s : publish_tcp(paths, std::nullopt, kept, opts.dry_run)) r.steps.push_back(s);
        r.rebuilt = true;
    } else if (kept && r.deleted) {
        // -s on the files store: open-smtp alone; the cdb keeps the old grants until a rebuild
        FileTransaction tx(opts.dry_run);
        tx.write(paths.open_smtp, format_open_smtp(*kept), 0644);
        if (!opts.dry_run) tx.commit();
        for (auto& s : tx.log()) r.steps.push_back(s);
    }
    return r;
}

}  // namespace qv
