// The files backend of the store: vpasswd (+ vpasswd.cdb) and .qmail-<alias> files per domain.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "qvmail/atomic_file.hpp"
#include "qvmail/cdb.hpp"
#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/filter.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/message.hpp"
#include "qvmail/mysql.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/text.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace fs = std::filesystem;

std::string format_vpasswd_line(const UserRecord& u) {
    return u.name + ":" + u.passwd + ":" + std::to_string(u.uid_flags) + ":" + std::to_string(u.gid_flags) + ":" +
           u.gecos + ":" + u.dir + ":" + u.quota + (u.scram.empty() ? "" : ":" + u.scram);
}

std::optional<UserRecord> parse_vpasswd_line(std::string_view line) {
    std::vector<std::string_view> f;
    for (int i = 0; i < 6; ++i) {
        std::size_t c = line.find(':');
        if (c == std::string_view::npos) return std::nullopt;
        f.push_back(line.substr(0, c));
        line.remove_prefix(c + 1);
    }
    if (f[0].empty()) return std::nullopt;
    std::string_view scram;
    if (std::size_t c = line.find(':'); c != std::string_view::npos) {
        scram = line.substr(c + 1);  // the eighth field: may itself contain ':'
        line = line.substr(0, c);
        if (!scram.starts_with("{")) return std::nullopt;
    }
    UserRecord u;
    u.name = f[0];
    u.passwd = f[1];
    if (std::from_chars(f[2].data(), f[2].data() + f[2].size(), u.uid_flags).ec != std::errc() ||
        std::from_chars(f[3].data(), f[3].data() + f[3].size(), u.gid_flags).ec != std::errc())
        return std::nullopt;
    u.gecos = f[4];
    u.dir = f[5];
    u.quota = line;
    u.scram = scram;
    return u;
}

std::string qmail_alias_file(std::string_view alias) {
    std::string f = ".qmail-";
    for (char c : alias) f += c == '.' ? ':' : c;
    return f;
}

namespace {

std::vector<UserRecord> read_vpasswd(const fs::path& file) {
    std::vector<UserRecord> out;
    if (!path_exists(file)) return out;
    LineReader in(file);
    std::string_view line;
    while (in.next(line)) {
        if (line.empty() || line[0] == '#') continue;
        auto u = parse_vpasswd_line(line);
        if (!u)
            throw ParseError(file, in.line_number(), "not a vpasswd line (name:passwd:uid:gid:gecos:dir:quota)",
                             std::string(line));
        out.push_back(std::move(*u));
    }
    return out;
}

// open-smtp, one grant a line, as vpopmail keeps it with qvmail's third field:
//   <ip>:allow,RELAYCLIENT=""<TAB><unix time><TAB><email>
// The part before the TAB is a tcprules line; qmailctl cdb puts these lines first in tcp.smtp.cdb.
std::optional<RelayGrant> parse_grant(std::string_view line) {
    std::size_t tab = line.find('\t'), colon = line.find(':');
    if (tab == std::string_view::npos || colon == std::string_view::npos || colon > tab) return std::nullopt;
    RelayGrant g;
    g.ip = line.substr(0, colon);
    std::string_view rest = line.substr(tab + 1);
    std::size_t tab2 = rest.find('\t');
    std::string_view ts = rest.substr(0, tab2);
    if (std::from_chars(ts.data(), ts.data() + ts.size(), g.timestamp).ec != std::errc()) return std::nullopt;
    if (tab2 != std::string_view::npos) g.email = rest.substr(tab2 + 1);
    return g;
}

std::string format_grant(const RelayGrant& g) {
    return g.ip + ":allow,RELAYCLIENT=\"\"\t" + std::to_string(g.timestamp) + "\t" + g.email;
}

}  // namespace

std::string format_open_smtp(const std::vector<RelayGrant>& grants) {
    std::string text;
    for (auto& g : grants) text += format_grant(g) + "\n";
    return text;
}

std::vector<RelayGrant> read_open_smtp(const fs::path& file) {
    std::vector<RelayGrant> out;
    ControlFile f = ControlFile::load(file);
    f.for_each_line([&](std::string_view l) {
        if (auto g = parse_grant(l)) out.push_back(*g);
        return true;
    });
    return out;
}

bool same_filter_test(const FilterRule& a, const FilterRule& b) {
    return a.header == b.header && a.comparison == b.comparison && fold_case(a.keyword) == fold_case(b.keyword) &&
           fold_case(a.folder) == fold_case(b.folder);
}

// ---- the files store's rules file ----

std::string format_filter_file(const std::vector<FilterRule>& rules) {
    std::string text =
        "# qvmail vfilter rules (edit with vcfilter): number, name, header, comparison, keyword, folder, "
        "action; TAB-separated\n";
    for (auto& r : rules)
        text += std::to_string(r.number) + "\t" + r.name + "\t" + std::to_string(r.header) + "\t" +
                std::to_string(r.comparison) + "\t" + r.keyword + "\t" + r.folder + "\t" + r.action + "\n";
    return text;
}

std::vector<FilterRule> parse_filter_file(std::string_view text, const fs::path& file) {
    std::vector<FilterRule> out;
    LineReader in = LineReader::from_text(text, file);
    std::string_view line;
    while (in.next(line)) {
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string_view> f;
        for (std::size_t start = 0;;) {
            std::size_t tab = line.find('\t', start);
            f.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
            if (tab == std::string_view::npos) break;
            start = tab + 1;
        }
        auto fail = [&](const std::string& why) { throw ParseError(file, in.line_number(), why, std::string(line)); };
        if (f.size() != 7)
            fail("expected 7 TAB-separated fields (number name header comparison keyword folder action)");
        auto num = [&](std::string_view s, int lo, int hi, const char* what) {
            int v = 0;
            auto r = std::from_chars(s.data(), s.data() + s.size(), v);
            if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v < lo || v > hi)
                fail(std::string("the ") + what + " '" + std::string(s) + "' is not a number from " +
                     std::to_string(lo) + " to " + std::to_string(hi));
            return v;
        };
        FilterRule r;
        r.number = num(f[0], 0, 32767, "filter number");
        r.name = f[1];
        r.header = num(f[2], -1, 32767, "header number");
        r.comparison = num(f[3], 0, 127, "comparison");
        r.keyword = f[4];
        r.folder = f[5];
        r.action = f[6];
        for (auto& o : out)
            if (o.number == r.number) fail("filter number " + std::to_string(r.number) + " appears twice");
        out.push_back(std::move(r));
    }
    std::sort(out.begin(), out.end(), [](const FilterRule& a, const FilterRule& b) { return a.number < b.number; });
    return out;
}

namespace {

class FilesStore final : public Store {
public:
    explicit FilesStore(fs::path open_smtp) : open_smtp_(std::move(open_smtp)) {}
    std::string_view backend() const noexcept override { return "files"; }

    std::optional<RelayGrant> find_grant(const std::string& ip, const std::optional<std::string>&,
                                         std::int64_t since) override {
        std::optional<RelayGrant> found;
        for (auto& g : list_grants())  // by IP only: open-smtp grants are folded into tcp.smtp.cdb
            if (g.ip == ip && g.timestamp > since && (!found || g.timestamp > found->timestamp)) found = g;
        return found;
    }

    std::vector<RelayGrant> list_grants() override { return read_open_smtp(open_smtp_); }

    // open-smtp only ever changes together with tcp.smtp.cdb, in one transaction: grant_relay(),
    // revoke_relay() and clear_open_smtp() (relay.hpp) write both, so these are never called.
    void record_grant(const RelayGrant&) override { rules_only(); }
    std::uint64_t revoke_grants(const std::string&, const std::optional<std::string>&) override { rules_only(); }
    PurgeResult purge_grants(std::int64_t, std::uint64_t, const ProgressFn&) override { rules_only(); }

    std::string grants_source() const override { return open_smtp_.string(); }
    bool grants_in_rules() const noexcept override { return true; }

    // Domains live in this host's files only (users/assign and the domain directories).
    bool shares_domains() const noexcept override { return false; }
    std::vector<SharedDomain> shared_domains() override { return {}; }
    std::optional<SharedDomain> shared_domain(std::string_view) override { return std::nullopt; }
    std::vector<std::string> removed_domains() override { return {}; }
    std::optional<std::string> mailbox_host(const DomainRef&, std::string_view) override { return std::nullopt; }
    void set_mailbox_host(const DomainRef&, std::string_view, const std::string&) override {}
    std::vector<std::pair<std::string, std::string>> host_mailboxes(const std::string&) override { return {}; }
    std::optional<ClusterHost> cluster_host(std::string_view) override { return std::nullopt; }
    void register_host(const ClusterHost&) override {}
    void put_shared_domain(const SharedDomain&) override {}
    void update_shared_domain(const SharedDomain&) override {}
    void remove_shared_domain(std::string_view) override {}

    std::optional<UserRecord> get_user(const DomainRef& d, std::string_view name) override {
        auto it = state_.find(d.name);
        if (it == state_.end()) {
            // The fast path the mail programs take: the cdb, when it is current.
            fs::path text = d.dir / "vpasswd", db = d.dir / "vpasswd.cdb";
            if (auto r = current_cdb(db, text)) {
                auto v = r->find(name);
                if (!v) return std::nullopt;
                return parse_vpasswd_line(std::string(name) + ":" + std::string(*v));
            }
        }
        for (auto& u : load(d).users)
            if (u.name == name) return u;
        return std::nullopt;
    }

    std::vector<UserRecord> users(const DomainRef& d) override { return load(d).users; }

    std::vector<std::string> aliases(const DomainRef& d) override {
        std::vector<std::string> out;
        std::error_code ec;
        for (fs::directory_iterator it(d.dir, ec), end; !ec && it != end; it.increment(ec)) {
            std::string f = it->path().filename().string();
            if (!f.starts_with(".qmail-") || f == ".qmail-default") continue;
            std::string a = f.substr(7);
            std::replace(a.begin(), a.end(), ':', '.');
            out.push_back(a);
        }
        auto st = state_.find(d.name);
        if (st != state_.end())
            for (auto& [a, lines] : st->second.alias_changes) {
                bool have = std::find(out.begin(), out.end(), a) != out.end();
                if (lines && !have) out.push_back(a);
                if (!lines && have) out.erase(std::find(out.begin(), out.end(), a));
            }
        std::sort(out.begin(), out.end());
        return out;
    }

    std::vector<std::string> alias_lines(const DomainRef& d, std::string_view alias, bool) override {
        auto st = state_.find(d.name);
        if (st != state_.end()) {
            auto it = st->second.alias_changes.find(std::string(alias));
            if (it != st->second.alias_changes.end()) return it->second.value_or(std::vector<std::string>{});
        }
        std::vector<std::string> out;
        fs::path f = d.dir / qmail_alias_file(alias);
        if (!path_exists(f)) return out;
        LineReader in(f);
        std::string_view line;
        while (in.next(line))
            if (!line.empty() && line[0] != '#') out.emplace_back(line);
        return out;
    }

    void create_domain(const DomainRef& d) override {
        State& s = state_[d.name];
        s.ref = d;
        s.loaded = s.inactive_loaded = true;
        s.dirty = true;
    }

    void drop_domain(const DomainRef& d) override {
        State& s = state_[d.name];
        s.ref = d;
        s.dropped = true;  // its files go with the domain directory
    }

    void add_user(const DomainRef& d, const UserRecord& u) override {
        State& s = load(d);
        if (find(s, u.name) != s.users.end())
            throw Error(Exit::exists, "mailbox " + u.name + "@" + d.name + " already exists");
        s.users.push_back(u);
        s.dirty = true;
    }

    void update_user(const DomainRef& d, const UserRecord& u) override {
        State& s = load(d);
        auto it = find(s, u.name);
        if (it == s.users.end()) throw Error(Exit::nouser, "no mailbox " + u.name + "@" + d.name);
        *it = u;
        s.dirty = true;
    }

    void update_inactive_user(const DomainRef& d, const UserRecord& u) override {
        State& s = load(d);
        auto it = find(s.inactive, u.name);
        if (it == s.inactive.end()) throw Error(Exit::nouser, "no inactive mailbox " + u.name + "@" + d.name);
        *it = u;
        s.inactive_dirty = true;
    }

    void remove_user(const DomainRef& d, std::string_view name) override {
        State& s = load(d);
        auto it = find(s, name);
        if (it == s.users.end()) throw Error(Exit::nouser, "no mailbox " + std::string(name) + "@" + d.name);
        s.users.erase(it);
        s.dirty = true;
    }

    void set_alias(const DomainRef& d, std::string_view alias, const std::vector<std::string>& lines) override {
        State& s = state_[d.name];
        s.ref = d;
        if (lines.empty())
            s.alias_changes[std::string(alias)] = std::nullopt;
        else
            s.alias_changes[std::string(alias)] = lines;
    }

    void change_alias_line(const DomainRef& d, std::string_view alias, const std::optional<std::string>& old,
                           const std::optional<std::string>& line) override {
        auto lines = alias_lines(d, alias, false);  // one file, written whole under the admin lock
        auto it = old ? std::find(lines.begin(), lines.end(), *old) : lines.end();
        if (it != lines.end() && line)
            *it = *line;
        else {
            if (it != lines.end()) lines.erase(it);
            if (line) lines.push_back(*line);
        }
        set_alias(d, alias, lines);
    }

    void rename_domain_rows(const DomainRef&, const std::string&) override {}  // all in the moved directory

    // Reads that keep nothing in state_ unless a change has loaded the domain: a long-lived reader (delivery
    // asks on its bounce path) must see the next change to the file.
    std::optional<UserRecord> get_inactive_user(const DomainRef& d, std::string_view name) override {
        auto set = inactive_users(d);
        auto it = find(set, name);
        if (it == set.end()) return std::nullopt;
        return *it;
    }

    std::vector<UserRecord> inactive_users(const DomainRef& d) override {
        auto st = state_.find(d.name);
        if (st != state_.end() && st->second.inactive_loaded) return st->second.inactive;
        return read_vpasswd(d.dir / "indibak");
    }

    void set_active(const DomainRef& d, std::string_view name, bool active) override {
        State& s = load(d);
        auto& from = active ? s.inactive : s.users;
        auto& to = active ? s.users : s.inactive;
        auto it = find(from, name);
        if (it == from.end())
            throw Error(Exit::nouser, "no " + std::string(active ? "inactive" : "active") + " mailbox " +
                                          std::string(name) + "@" + d.name);
        if (find(to, name) != to.end())
            throw Error(Exit::exists, "an " + std::string(active ? "active" : "inactive") + " mailbox " +
                                          std::string(name) + "@" + d.name + " exists already");
        to.push_back(*it);
        from.erase(it);
        s.dirty = s.inactive_dirty = true;
    }

    void remove_inactive_user(const DomainRef& d, std::string_view name) override {
        State& s = load(d);
        auto it = find(s.inactive, name);
        if (it == s.inactive.end()) throw Error(Exit::nouser, "no inactive mailbox " + std::string(name) + "@" + d.name);
        s.inactive.erase(it);
        s.inactive_dirty = true;
    }

    void record_login(const DomainRef&, const UserRecord& u, const LoginRecord& l) override {
        if (u.dir.empty()) return;
        const fs::path file = fs::path(u.dir) / "lastauth";
        std::vector<LoginRecord> kept = read_logins(file);
        std::erase_if(kept, [&](const LoginRecord& o) { return o.service == l.service; });
        kept.push_back(l);
        write_logins(file, kept);
    }

    std::map<std::string, std::vector<LoginRecord>> logins(const DomainRef& d) override {
        std::map<std::string, std::vector<LoginRecord>> out;
        State& s = load(d);
        for (const auto* set : {&s.users, &s.inactive})
            for (const auto& u : *set)
                if (auto l = user_logins(d, u); !l.empty()) out[u.name] = std::move(l);
        return out;
    }

    std::vector<LoginRecord> user_logins(const DomainRef&, const UserRecord& u) override {
        if (u.dir.empty()) return {};
        return read_logins(fs::path(u.dir) / "lastauth");
    }

    void move_logins(const DomainRef&, std::string_view, const DomainRef&, std::string_view) override {}

    void rename_grants(const std::string& from, const std::string& to) override {
        grant_renames_.emplace_back(from, to);
    }

    std::vector<FilterRule> filters(const DomainRef& d, std::string_view local, bool) override {
        return filter_rules(d, local);
    }

    std::vector<std::string> filter_owners(const DomainRef& d) override {
        std::vector<std::string> out;
        std::error_code ec;
        for (fs::directory_iterator it(d.dir / "vfilter", ec), end; !ec && it != end; it.increment(ec)) {
            std::string f = it->path().filename().string();
            if (!f.empty() && f[0] != '.' && it->is_regular_file(ec)) out.push_back(f);
        }
        auto st = state_.find(d.name);
        if (st != state_.end())
            for (auto& [local, rules] : st->second.filter_changes) {
                bool have = std::find(out.begin(), out.end(), local) != out.end();
                if (!rules.empty() && !have) out.push_back(local);
                if (rules.empty() && have) out.erase(std::find(out.begin(), out.end(), local));
            }
        std::sort(out.begin(), out.end());
        return out;
    }

    void add_filter(const DomainRef& d, std::string_view local, const FilterRule& r) override {
        auto rules = filter_rules(d, local);
        for (auto& o : rules)
            if (o.number == r.number || same_filter_test(o, r))
                throw Error(Exit::exists, "filter " + std::to_string(o.number) + " of " + std::string(local) + "@" +
                                              d.name +
                                              " has this number, or this header, comparison, keyword "
                                              "and folder");
        rules.push_back(r);
        std::sort(rules.begin(), rules.end(),
                  [](const FilterRule& a, const FilterRule& b) { return a.number < b.number; });
        set_filter_rules(d, local, std::move(rules));
    }

    void update_filter(const DomainRef& d, std::string_view local, const FilterRule& r) override {
        auto rules = filter_rules(d, local);
        auto it = std::find_if(rules.begin(), rules.end(), [&](const FilterRule& o) { return o.number == r.number; });
        if (it == rules.end())
            throw Error(Exit::missing,
                        "no filter " + std::to_string(r.number) + " for " + std::string(local) + "@" + d.name);
        *it = r;
        set_filter_rules(d, local, std::move(rules));
    }

    void remove_filter(const DomainRef& d, std::string_view local, int number) override {
        auto rules = filter_rules(d, local);
        auto n = std::erase_if(rules, [&](const FilterRule& o) { return o.number == number; });
        if (n == 0)
            throw Error(Exit::missing,
                        "no filter " + std::to_string(number) + " for " + std::string(local) + "@" + d.name);
        set_filter_rules(d, local, std::move(rules));
    }

    void remove_filters(const DomainRef& d, std::string_view local) override {
        // without reading the file: a broken one must not keep its mailbox from being removed
        std::error_code ec;
        auto st = state_.find(d.name);
        bool pending = st != state_.end() && st->second.filter_changes.count(std::string(local));
        if (pending || fs::exists(filter_file(d, local), ec)) set_filter_rules(d, local, {});
    }

    void stage(FileTransaction& tx) override {
        if (!grant_renames_.empty()) {
            auto grants = list_grants();
            bool changed = false;
            for (auto& g : grants)
                for (auto& [from, to] : grant_renames_) {
                    std::string renamed = renamed_email(g.email, from, to);
                    if (renamed == g.email) continue;
                    g.email = renamed;
                    changed = true;
                }
            if (changed) tx.write(open_smtp_, format_open_smtp(grants), 0644);
        }
        for (auto& [name, s] : state_) {
            if (s.dropped) continue;
            const DomainRef& d = s.ref;
            for (auto& [local, rules] : s.filter_changes) {
                if (rules.empty()) {
                    tx.remove(filter_file(d, local));
                    continue;
                }
                tx.make_dir(d.dir / "vfilter", 0750, d.owner);
                tx.write(filter_file(d, local), format_filter_file(rules), 0600, d.owner);
            }
            if (s.dirty) {
                std::string text;
                for (auto& u : s.users) text += format_vpasswd_line(u) + "\n";
                tx.write(d.dir / "vpasswd", text, 0600, d.owner);
                if (!d.bulk && tx.dry_run()) {
                    tx.note("write " + (d.dir / "vpasswd.cdb").string());
                } else if (!d.bulk) {
                    AtomicFile& f = tx.stage(d.dir / "vpasswd.cdb", 0600, d.owner);
                    CdbWriter w(f.fd(), f.temp_path());
                    for (auto& u : s.users) {
                        std::string line = format_vpasswd_line(u);
                        w.add(u.name, std::string_view(line).substr(u.name.size() + 1));
                    }
                    w.finish();
                }
            }
            if (s.inactive_dirty) {
                if (s.inactive.empty()) {
                    tx.remove(d.dir / "indibak");
                } else {
                    std::string text;
                    for (auto& u : s.inactive) text += format_vpasswd_line(u) + "\n";
                    tx.write(d.dir / "indibak", text, 0600, d.owner);
                }
            }
            for (auto& [alias, lines] : s.alias_changes) {
                fs::path f = d.dir / qmail_alias_file(alias);
                if (!lines) {
                    tx.remove(f);
                    continue;
                }
                std::string text;
                for (auto& l : *lines) text += l + "\n";
                tx.write(f, text, 0600, d.owner);
            }
        }
    }

    void commit() override {
        state_.clear();
        grant_renames_.clear();
    }
    void rollback() noexcept override {
        state_.clear();
        grant_renames_.clear();
    }

private:
    struct State {
        DomainRef ref;
        std::vector<UserRecord> users;
        std::vector<UserRecord> inactive;  // <domain dir>/indibak
        bool loaded = false;
        bool inactive_loaded = false;
        bool dirty = false;
        bool inactive_dirty = false;
        bool dropped = false;
        std::map<std::string, std::optional<std::vector<std::string>>> alias_changes;
        std::map<std::string, std::vector<FilterRule>> filter_changes;  // per local part; none: remove
    };

    static fs::path filter_file(const DomainRef& d, std::string_view local) {
        return d.dir / "vfilter" / std::string(local);
    }

    std::vector<FilterRule> filter_rules(const DomainRef& d, std::string_view local) {
        auto st = state_.find(d.name);
        if (st != state_.end()) {
            auto it = st->second.filter_changes.find(std::string(local));
            if (it != st->second.filter_changes.end()) return it->second;
        }
        ControlFile f = ControlFile::load(filter_file(d, local));
        return f.exists() ? parse_filter_file(f.text(), f.path()) : std::vector<FilterRule>{};
    }

    void set_filter_rules(const DomainRef& d, std::string_view local, std::vector<FilterRule> rules) {
        State& s = state_[d.name];
        s.ref = d;
        s.filter_changes[std::string(local)] = std::move(rules);
    }

    State& load(const DomainRef& d) {
        State& s = state_[d.name];
        if (!s.loaded) {
            s.ref = d;
            s.users = read_vpasswd(d.dir / "vpasswd");
            s.loaded = true;
        }
        if (!s.inactive_loaded) {
            s.inactive = read_vpasswd(d.dir / "indibak");
            s.inactive_loaded = true;
        }
        return s;
    }

    static std::vector<UserRecord>::iterator find(State& s, std::string_view name) { return find(s.users, name); }
    static std::vector<UserRecord>::iterator find(std::vector<UserRecord>& set, std::string_view name) {
        return std::find_if(set.begin(), set.end(), [&](const UserRecord& u) { return u.name == name; });
    }

    // <home>/lastauth: "service<TAB>ip<TAB>unix time" a line. A line that does not read is skipped.
    static std::vector<LoginRecord> read_logins(const fs::path& file) {
        std::vector<LoginRecord> out;
        ControlFile f = ControlFile::load(file);
        f.for_each_line([&](std::string_view l) {
            std::size_t t1 = l.find('\t'), t2 = t1 == std::string_view::npos ? t1 : l.find('\t', t1 + 1);
            if (t2 == std::string_view::npos) return true;
            LoginRecord r{std::string(l.substr(0, t1)), std::string(l.substr(t1 + 1, t2 - t1 - 1)), 0};
            std::string_view ts = l.substr(t2 + 1);
            if (std::from_chars(ts.data(), ts.data() + ts.size(), r.time).ec == std::errc()) out.push_back(r);
            return true;
        });
        return out;
    }

    // Replaced by rename (a temporary file beside it, with the home's owner), not flushed: a crash loses
    // at most the latest login, never the file.
    static void write_logins(const fs::path& file, const std::vector<LoginRecord>& logins) {
        std::string text;
        for (auto& l : logins) text += l.service + "\t" + l.ip + "\t" + std::to_string(l.time) + "\n";
        struct stat home {};
        if (::stat(file.parent_path().c_str(), &home) != 0) return;  // no home: nothing to record
        const fs::path tmp = file.parent_path() / (".lastauth." + std::to_string(::getpid()));
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        // a login program that may not write the home (IndiMail's qmail-smtpd runs vchkpass as qmaild; a
        // unit may mount it read-only) records nothing
        if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) return;
        if (fd < 0) throw sys_error(Exit::cantcreat, "cannot record the login in", file, errno);
        bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        int e = errno;
        if (ok && ::geteuid() == 0 && ::fchown(fd, home.st_uid, home.st_gid) != 0) ok = false, e = errno;
        ::close(fd);
        if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) {
            if (ok) e = errno;
            ::unlink(tmp.c_str());
            throw sys_error(Exit::ioerr, "cannot record the login in", file, e);
        }
    }

    [[noreturn]] static void rules_only() {
        throw Error(Exit::software, "the files store's relay grants change with tcp.smtp.cdb (see relay.hpp)");
    }

    // `email` as rename_grants(from, to) leaves it (the domain compared without regard to case).
    static std::string renamed_email(const std::string& email, const std::string& from, const std::string& to) {
        if (from.starts_with("@")) {
            if (email.size() > from.size() && equal_ignoring_case(email.substr(email.size() - from.size()), from))
                return email.substr(0, email.size() - from.size()) + to;
            return email;
        }
        return equal_ignoring_case(email, from) ? to : email;
    }

    fs::path open_smtp_;
    std::map<std::string, State> state_;
    std::vector<std::pair<std::string, std::string>> grant_renames_;
};

}  // namespace

std::unique_ptr<Store> make_files_store(const Paths& paths) {
    return std::make_unique<FilesStore>(paths.open_smtp);
}

void retry_rolled_back(Store& store, const std::function<void()>& change, int attempts) {
    for (int attempt = 1;; ++attempt) {
        try {
            change();
            return;
        } catch (const Error& e) {
            store.rollback();
            if (e.code() != Exit::tempfail || attempt >= attempts) throw;
            thread_local std::minstd_rand rng{std::random_device{}()};
            std::uniform_int_distribution<int> ms(10 << attempt, 20 << attempt);
            std::this_thread::sleep_for(std::chrono::milliseconds(ms(rng)));
        } catch (...) {
            store.rollback();
            throw;
        }
    }
}

std::unique_ptr<Store> open_store(const Paths& paths) {
    return open_store(paths, MysqlOverrides{});
}

std::unique_ptr<Store> open_store(const Paths& paths, const MysqlOverrides& overrides) {
    if (auto config = mysql_config(paths, overrides)) return make_mysql_store(*config);
    return make_files_store(paths);
}

}  // namespace qv
