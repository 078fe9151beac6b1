// The MySQL backend of the store: IndiMail's tables `indimail` (mailboxes), `valias` (aliases), `relay`
// (POP/IMAP-before-SMTP grants) and `vfilter` (filter rules).
// Changes run in one transaction, opened at the first change and committed after the files of the
// same change are in place (see apply_change in domain.cpp).
#include <algorithm>
#include <charconv>
#include <map>
#include <memory>

#include "qvmail/error.hpp"
#include "qvmail/mysql.hpp"
#include "qvmail/store.hpp"
#include "qvmail/text.hpp"

namespace qv {

namespace {

using Row = std::vector<std::optional<std::string>>;

std::uint32_t to_u32(const std::optional<std::string>& s) {
    std::uint32_t v = 0;
    if (s) std::from_chars(s->data(), s->data() + s->size(), v);
    return v;
}

UserRecord user_from(const Row& r) {
    UserRecord u;
    u.name = r[0].value_or("");
    u.passwd = r[1].value_or("");
    u.uid_flags = to_u32(r[2]);
    u.gid_flags = to_u32(r[3]);
    u.gecos = r[4].value_or("");
    u.dir = r[5].value_or("");
    u.quota = r[6].value_or("NOQUOTA");
    u.scram = r[7].value_or("");
    return u;
}

SqlValue scram_value(const UserRecord& u) {
    return u.scram.empty() ? SqlValue{} : SqlValue{u.scram};
}

constexpr const char* kUserColumns = "pw_name, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell, scram";

class MysqlStore final : public Store {
public:
    explicit MysqlStore(const MysqlConfig& config) : conn_(config) {}

    std::string_view backend() const noexcept override { return "mysql"; }

    std::optional<UserRecord> get_user(const DomainRef& d, std::string_view name) override {
        return find_user("indimail", d, name);
    }

    std::vector<UserRecord> users(const DomainRef& d) override { return list_users("indimail", d); }

    std::vector<std::string> aliases(const DomainRef& d) override {
        std::vector<std::string> out;
        for (auto& r :
             MysqlStatement(conn_, "SELECT DISTINCT alias FROM valias WHERE domain = ? ORDER BY alias").query({d.name}))
            out.push_back(r[0].value_or(""));
        return out;
    }

    std::vector<std::string> alias_lines(const DomainRef& d, std::string_view alias, bool lock) override {
        std::string sql = "SELECT valias_line FROM valias WHERE alias = ? AND domain = ? ORDER BY timestamp, valias_line";
        if (lock) {
            change();
            sql += " FOR UPDATE";
        }
        std::vector<std::string> out;
        for (auto& r : MysqlStatement(conn_, sql.c_str()).query({std::string(alias), d.name}))
            out.push_back(r[0].value_or(""));
        return out;
    }

    void create_domain(const DomainRef&) override {
        // DDL commits implicitly, so the tables are made before the transaction opens.
        if (!in_transaction_) create_missing_tables(conn_);
    }

    void drop_domain(const DomainRef& d) override {
        change();
        for (const char* sql : {"DELETE FROM indimail WHERE pw_domain = ?", "DELETE FROM indibak WHERE pw_domain = ?",
                                "DELETE FROM valias WHERE domain = ?"})
            MysqlStatement(conn_, sql).execute({d.name});
        table_execute("DELETE FROM lastauth WHERE domain = ?", {d.name});
        table_execute("DELETE FROM hostcntrl WHERE pw_domain = ?", {d.name});
        // the rules of every address of the domain, prefilt and postfilt included
        table_execute("DELETE FROM vfilter WHERE emailid LIKE ? ESCAPE '!'", {domain_pattern(d)});
    }

    void add_user(const DomainRef& d, const UserRecord& u) override {
        change();
        try {
            MysqlStatement(conn_,
                           "INSERT INTO indimail (pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, "
                           "pw_dir, pw_shell, scram) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .execute({u.name, d.name, u.passwd, std::int64_t(u.uid_flags), std::int64_t(u.gid_flags), u.gecos,
                          u.dir, u.quota, scram_value(u)});
        } catch (const Error& e) {
            if (e.code() == Exit::exists)
                throw Error(Exit::exists, "mailbox " + u.name + "@" + d.name + " already exists");
            throw;
        }
    }

    void update_user(const DomainRef& d, const UserRecord& u) override { update_row("indimail", "", d, u); }
    void remove_user(const DomainRef& d, std::string_view name) override { delete_row("indimail", "", d, name); }

    std::optional<UserRecord> get_inactive_user(const DomainRef& d, std::string_view name) override {
        return find_user("indibak", d, name);
    }

    std::vector<UserRecord> inactive_users(const DomainRef& d) override { return list_users("indibak", d); }

    void set_active(const DomainRef& d, std::string_view name, bool active) override {
        change();
        const std::string from = active ? "indibak" : "indimail", to = active ? "indimail" : "indibak";
        const std::string cols = "pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell, scram";
        std::uint64_t n = 0;
        try {
            n = MysqlStatement(conn_, "INSERT INTO " + to + " (" + cols + ") SELECT " + cols + " FROM " + from +
                                          " WHERE pw_name = ? AND pw_domain = ?")
                    .execute({std::string(name), d.name});
        } catch (const Error& e) {
            if (e.code() == Exit::exists)
                throw Error(Exit::exists, "an " + std::string(active ? "active" : "inactive") + " mailbox " +
                                              std::string(name) + "@" + d.name + " exists already");
            throw;
        }
        if (n == 0)
            throw Error(Exit::nouser,
                        "no " + std::string(active ? "inactive" : "active") + " mailbox " + std::string(name) + "@" + d.name);
        MysqlStatement(conn_, "DELETE FROM " + from + " WHERE pw_name = ? AND pw_domain = ?")
            .execute({std::string(name), d.name});
    }

    void update_inactive_user(const DomainRef& d, const UserRecord& u) override {
        update_row("indibak", "inactive ", d, u);
    }
    void remove_inactive_user(const DomainRef& d, std::string_view name) override {
        delete_row("indibak", "inactive ", d, name);
    }

    void record_login(const DomainRef& d, const UserRecord& u, const LoginRecord& l) override {
        // one statement on its own (autocommit); the table is made when it is missing (IndiMail makes
        // it on first use too), so that a login costs no SHOW TABLES
        const char* sql =
            "REPLACE INTO lastauth (user, domain, service, remote_ip, quota, gecos, timestamp) "
            "VALUES (?, ?, ?, ?, 0, ?, FROM_UNIXTIME(?))";
        const std::vector<SqlValue> params{u.name, d.name, l.service, l.ip, u.gecos, l.time};
        try {
            MysqlStatement(conn_, sql).execute(params);
        } catch (const Error& e) {
            if (e.code() != Exit::config || in_transaction_) throw;
            create_missing_tables(conn_);
            MysqlStatement(conn_, sql).execute(params);
        }
    }

    std::map<std::string, std::vector<LoginRecord>> logins(const DomainRef& d) override {
        std::map<std::string, std::vector<LoginRecord>> out;
        for (auto& r : table_query("SELECT user, service, remote_ip, UNIX_TIMESTAMP(timestamp) FROM lastauth "
                                   "WHERE domain = ? ORDER BY user, service",
                                   {d.name}))
            out[r[0].value_or("")].push_back(LoginRecord{r[1].value_or(""), r[2].value_or(""), to_i64(r[3])});
        return out;
    }

    std::vector<LoginRecord> user_logins(const DomainRef& d, const UserRecord& u) override {
        std::vector<LoginRecord> out;
        for (auto& r : table_query("SELECT service, remote_ip, UNIX_TIMESTAMP(timestamp) FROM lastauth "
                                   "WHERE user = ? AND domain = ? ORDER BY service",
                                   {u.name, d.name}))
            out.push_back(LoginRecord{r[0].value_or(""), r[1].value_or(""), to_i64(r[2])});
        return out;
    }

    void move_logins(const DomainRef& from, std::string_view old_name, const DomainRef& to,
                     std::string_view new_name) override {
        change();
        table_execute("UPDATE lastauth SET user = ?, domain = ? WHERE user = ? AND domain = ?",
                      {std::string(new_name), to.name, std::string(old_name), from.name});
    }

    void set_alias(const DomainRef& d, std::string_view alias, const std::vector<std::string>& lines) override {
        change();
        MysqlStatement(conn_, "DELETE FROM valias WHERE alias = ? AND domain = ?")
            .execute({std::string(alias), d.name});
        MysqlStatement insert(conn_, "INSERT INTO valias (alias, domain, valias_line) VALUES (?, ?, ?)");
        for (auto& l : lines) insert.execute({std::string(alias), d.name, l});
    }

    void change_alias_line(const DomainRef& d, std::string_view alias, const std::optional<std::string>& old,
                           const std::optional<std::string>& line) override {
        change();
        if (old)
            MysqlStatement(conn_, "DELETE FROM valias WHERE alias = ? AND domain = ? AND valias_line = ?")
                .execute({std::string(alias), d.name, *old});
        if (line)
            MysqlStatement(conn_, "INSERT INTO valias (alias, domain, valias_line) VALUES (?, ?, ?)")
                .execute({std::string(alias), d.name, *line});
    }

    void rename_domain_rows(const DomainRef& d, const std::string& to) override {
        ensure_tables();
        change();
        for (const char* sql : {"UPDATE indimail SET pw_domain = ? WHERE pw_domain = ?",
                                "UPDATE indibak SET pw_domain = ? WHERE pw_domain = ?",
                                "UPDATE valias SET domain = ? WHERE domain = ?"})
            MysqlStatement(conn_, sql).execute({to, d.name});
        table_execute("UPDATE lastauth SET domain = ? WHERE domain = ?", {to, d.name});
        table_execute("UPDATE hostcntrl SET pw_domain = ? WHERE pw_domain = ?", {to, d.name});
        table_execute("UPDATE vfilter SET emailid = CONCAT(SUBSTRING(emailid, 1, CHAR_LENGTH(emailid) - ?), ?) "
                      "WHERE emailid LIKE ? ESCAPE '!'",
                      {std::int64_t(d.name.size()), to, domain_pattern(d)});
    }

    void rename_grants(const std::string& from, const std::string& to) override {
        ensure_tables();
        change();
        if (from.starts_with("@")) {
            table_execute("UPDATE relay SET email = CONCAT(SUBSTRING(email, 1, CHAR_LENGTH(email) - ?), ?) "
                          "WHERE email LIKE ? ESCAPE '!'",
                          {std::int64_t(from.size()), to, like_suffix(from)});
        } else {
            table_execute("UPDATE relay SET email = ? WHERE email = ?", {to, from});
        }
    }

    std::optional<RelayGrant> find_grant(const std::string& ip, const std::optional<std::string>& sender,
                                         std::int64_t since) override {
        auto rows = table_query(
            "SELECT email, ipaddr, timestamp FROM relay WHERE ipaddr = ? AND timestamp > ? "
            "ORDER BY timestamp DESC",
            {ip, since});
        for (auto& r : rows) {
            RelayGrant g = grant_from(r);
            if (!sender || equal_ignoring_case(*sender, g.email)) return g;
        }
        return std::nullopt;
    }

    std::vector<RelayGrant> list_grants() override {
        std::vector<RelayGrant> out;
        for (auto& r : table_query("SELECT email, ipaddr, timestamp FROM relay WHERE timestamp IS NOT NULL "
                                   "ORDER BY timestamp, email",
                                   {}))
            out.push_back(grant_from(r));
        return out;
    }

    void record_grant(const RelayGrant& g) override {
        ensure_tables();
        MysqlStatement(conn_, "REPLACE INTO relay (email, ipaddr, timestamp) VALUES (?, ?, ?)")
            .execute({g.email, g.ip, g.timestamp});
    }

    std::uint64_t revoke_grants(const std::string& ip, const std::optional<std::string>& email) override {
        ensure_tables();
        if (email)
            return MysqlStatement(conn_, "DELETE FROM relay WHERE ipaddr = ? AND email = ?").execute({ip, *email});
        return MysqlStatement(conn_, "DELETE FROM relay WHERE ipaddr = ?").execute({ip});
    }

    PurgeResult purge_grants(std::int64_t cutoff, std::uint64_t batch, const ProgressFn& progress) override {
        // Short statements, each its own transaction, so that CHECKRELAY lookups and logins never wait
        // long behind the purge. The batches walk the table in the order of its clustered index
        // (email, ipaddr), each starting after the last row of the one before: together they cover
        // the table once, as one plain DELETE does. (`DELETE ... LIMIT n` from the start every time
        // would walk again over the rows deleted but not yet purged by InnoDB, and through the
        // timestamp index it would reach each row by a random lookup.) Rows without a timestamp are
        // left alone, as IndiMail's `timestamp <= ...` leaves them.
        ensure_tables();
        batch = std::max<std::uint64_t>(batch, 1);
        PurgeResult r;
        // [0]: the first batch, from the start of the table; [1]: the next ones, after the last row
        const std::string cond[2] = {"timestamp <= ?", "timestamp <= ? AND (email > ? OR (email = ? AND ipaddr > ?))"};
        const std::string upto = " AND (email < ? OR (email = ? AND ipaddr <= ?))";
        std::unique_ptr<MysqlStatement> edge[2], del_upto[2], del_rest[2];
        for (int i = 0; i < 2; ++i) {
            edge[i] = std::make_unique<MysqlStatement>(
                conn_, "SELECT email, ipaddr FROM relay WHERE " + cond[i] + " ORDER BY email, ipaddr LIMIT 1 OFFSET ?");
            del_upto[i] = std::make_unique<MysqlStatement>(conn_, "DELETE FROM relay WHERE " + cond[i] + upto);
            del_rest[i] = std::make_unique<MysqlStatement>(conn_, "DELETE FROM relay WHERE " + cond[i]);
        }
        std::optional<std::pair<std::string, std::string>> last;  // the last row of the previous batch
        for (;;) {
            ++r.batches;
            int i = last ? 1 : 0;
            std::vector<SqlValue> where{cutoff};
            if (last) where.insert(where.end(), {last->first, last->first, last->second});
            std::vector<SqlValue> edge_params = where;
            edge_params.push_back(static_cast<std::int64_t>(batch - 1));
            auto e = edge[i]->query(edge_params);
            if (e.empty()) {
                r.deleted += del_rest[i]->execute(where);
                break;
            }
            std::pair<std::string, std::string> row{e[0][0].value_or(""), e[0][1].value_or("")};
            where.insert(where.end(), {row.first, row.first, row.second});
            r.deleted += del_upto[i]->execute(where);
            if (progress) progress(r.deleted, 0);
            last = std::move(row);
        }
        auto rows = MysqlStatement(conn_, "SELECT COUNT(*) FROM relay").query();
        r.kept = rows.empty() ? 0 : std::stoull(rows[0][0].value_or("0"));
        return r;
    }

    std::vector<FilterRule> filters(const DomainRef& d, std::string_view local, bool lock) override {
        std::string sql =
            "SELECT filter_no, filter_name, header_name, comparision, keyword, destination, bounce_action "
            "FROM vfilter WHERE emailid = ? ORDER BY filter_no";
        if (lock) {
            ensure_tables();
            change();
            sql += " FOR UPDATE";
        }
        std::vector<FilterRule> out;
        for (auto& r : table_query(sql.c_str(), {email(d, local)})) {
            FilterRule f;
            f.number = static_cast<int>(to_i64(r[0]));
            f.name = r[1].value_or("");
            f.header = static_cast<int>(to_i64(r[2]));
            f.comparison = static_cast<int>(to_i64(r[3]));
            f.keyword = r[4].value_or("");
            f.folder = r[5].value_or("");
            f.action = r[6].value_or("");
            out.push_back(std::move(f));
        }
        return out;
    }

    std::vector<std::string> filter_owners(const DomainRef& d) override {
        std::vector<std::string> out;
        for (auto& r :
             table_query("SELECT DISTINCT emailid FROM vfilter WHERE emailid LIKE ? ESCAPE '!' ORDER BY emailid",
                         {domain_pattern(d)})) {
            std::string e = r[0].value_or("");
            out.push_back(e.substr(0, e.rfind('@')));
        }
        return out;
    }

    void add_filter(const DomainRef& d, std::string_view local, const FilterRule& f) override {
        ensure_tables();
        change();
        try {
            MysqlStatement(conn_,
                           "INSERT INTO vfilter (emailid, filter_no, filter_name, header_name, comparision, keyword, "
                           "destination, bounce_action) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .execute({email(d, local), std::int64_t(f.number), f.name, std::int64_t(f.header),
                          std::int64_t(f.comparison), f.keyword, f.folder, f.action});
        } catch (const Error& e) {
            if (e.code() == Exit::exists)
                throw Error(Exit::exists, email(d, local) + " has a filter with number " + std::to_string(f.number) +
                                              ", or with this header, comparison, keyword and folder (" + e.what() +
                                              ")");
            throw;
        }
    }

    void update_filter(const DomainRef& d, std::string_view local, const FilterRule& f) override {
        ensure_tables();
        change();
        std::uint64_t n = 0;
        try {
            n = MysqlStatement(conn_,
                               "UPDATE vfilter SET filter_name = ?, header_name = ?, comparision = ?, keyword = ?, "
                               "destination = ?, bounce_action = ? WHERE emailid = ? AND filter_no = ?")
                    .execute({f.name, std::int64_t(f.header), std::int64_t(f.comparison), f.keyword, f.folder, f.action,
                              email(d, local), std::int64_t(f.number)});
        } catch (const Error& e) {
            if (e.code() == Exit::exists)
                throw Error(Exit::exists, email(d, local) +
                                              " has another filter with this header, comparison, "
                                              "keyword and folder (" +
                                              e.what() + ")");
            throw;
        }
        if (n == 0) throw Error(Exit::missing, "no filter " + std::to_string(f.number) + " for " + email(d, local));
    }

    void remove_filter(const DomainRef& d, std::string_view local, int number) override {
        ensure_tables();
        change();
        auto n = MysqlStatement(conn_, "DELETE FROM vfilter WHERE emailid = ? AND filter_no = ?")
                     .execute({email(d, local), std::int64_t(number)});
        if (n == 0) throw Error(Exit::missing, "no filter " + std::to_string(number) + " for " + email(d, local));
    }

    void remove_filters(const DomainRef& d, std::string_view local) override {
        change();
        table_execute("DELETE FROM vfilter WHERE emailid = ?", {email(d, local)});
    }

    std::string grants_source() const override { return "table relay"; }
    bool grants_in_rules() const noexcept override { return false; }

    bool shares_domains() const noexcept override { return true; }

    std::vector<SharedDomain> shared_domains() override {
        ensure_tables();
        std::vector<SharedDomain> out;
        for (auto& r : MysqlStatement(conn_, std::string("SELECT ") + kDomainColumns + " FROM qvdomain").query())
            out.push_back(shared_from(r));
        for (auto& r : MysqlStatement(conn_, "SELECT alias, domain FROM aliasdomain").query())
            out.push_back(alias_from(r));
        std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
        return out;
    }

    std::optional<SharedDomain> shared_domain(std::string_view name) override {
        auto rows = table_query((std::string("SELECT ") + kDomainColumns + " FROM qvdomain WHERE domain = ?").c_str(),
                                {std::string(name)});
        if (!rows.empty()) return shared_from(rows[0]);
        rows = table_query("SELECT alias, domain FROM aliasdomain WHERE alias = ?", {std::string(name)});
        if (!rows.empty()) return alias_from(rows[0]);
        return std::nullopt;
    }

    std::vector<std::string> removed_domains() override {
        std::vector<std::string> out;
        for (auto& r : table_query("SELECT domain FROM qvdomain_removed ORDER BY domain", {}))
            out.push_back(r[0].value_or(""));
        return out;
    }

    void put_shared_domain(const SharedDomain& d) override {
        ensure_tables();
        change();
        // One name, one row in either table: the other is checked under a lock (a domain and an alias
        // domain of the same name added at once by two hosts meet on it), the own one by its key.
        const char* other = d.alias_of.empty() ? "SELECT alias FROM aliasdomain WHERE alias = ? FOR UPDATE"
                                               : "SELECT domain FROM qvdomain WHERE domain = ? FOR UPDATE";
        if (!MysqlStatement(conn_, other).query({d.name}).empty())
            throw Error(Exit::exists, "domain " + d.name + " already exists (in the database)");
        try {
            if (d.alias_of.empty())
                MysqlStatement(conn_, std::string("INSERT INTO qvdomain (") + kDomainColumns +
                                          ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
                    .execute(domain_values(d));
            else
                MysqlStatement(conn_, "INSERT INTO aliasdomain (alias, domain) VALUES (?, ?)").execute({d.name, d.alias_of});
        } catch (const Error& e) {
            if (e.code() == Exit::exists) throw Error(Exit::exists, "domain " + d.name + " already exists (in the database)");
            throw;
        }
        MysqlStatement(conn_, "DELETE FROM qvdomain_removed WHERE domain = ?").execute({d.name});
    }

    void update_shared_domain(const SharedDomain& d) override {
        ensure_tables();
        change();
        if (!d.alias_of.empty()) {
            MysqlStatement(conn_, "UPDATE aliasdomain SET domain = ? WHERE alias = ?").execute({d.alias_of, d.name});
            return;
        }
        auto v = domain_values(d);
        v.push_back(d.name);
        v.erase(v.begin());
        MysqlStatement(conn_,
                       "UPDATE qvdomain SET owner = ?, uid = ?, gid = ?, handler = ?, program = ?, hash_method = ?, "
                       "base_path = ?, chkrcpt = ? WHERE domain = ?")
            .execute(v);
    }

    void remove_shared_domain(std::string_view name) override {
        ensure_tables();
        change();
        const std::string n(name);
        std::vector<std::string> gone{n};
        for (auto& r : MysqlStatement(conn_, "SELECT alias FROM aliasdomain WHERE domain = ? FOR UPDATE").query({n}))
            gone.push_back(r[0].value_or(""));
        MysqlStatement(conn_, "DELETE FROM qvdomain WHERE domain = ?").execute({n});
        MysqlStatement(conn_, "DELETE FROM aliasdomain WHERE alias = ? OR domain = ?").execute({n, n});
        for (auto& g : gone) MysqlStatement(conn_, "REPLACE INTO qvdomain_removed (domain) VALUES (?)").execute({g});
    }

    std::optional<std::string> mailbox_host(const DomainRef& d, std::string_view name) override {
        auto rows = table_query("SELECT host FROM hostcntrl WHERE pw_name = ? AND pw_domain = ?",
                                {std::string(name), d.name});
        if (rows.empty() || !rows[0][0]) return std::nullopt;
        return *rows[0][0];
    }

    void set_mailbox_host(const DomainRef& d, std::string_view name, const std::string& host) override {
        change();
        // IndiMail's layout keeps a password column; qvmail keeps the password in indimail only. A database
        // without the table (an account that may not create it, before qmailctl db init) keeps no host.
        table_execute("REPLACE INTO hostcntrl (pw_name, pw_domain, pw_passwd, host) VALUES (?, ?, '', ?)",
                      {std::string(name), d.name, host});
    }

    std::vector<std::pair<std::string, std::string>> host_mailboxes(const std::string& host) override {
        std::vector<std::pair<std::string, std::string>> out;
        for (auto& r : table_query("SELECT pw_domain, pw_name FROM hostcntrl WHERE host = ? ORDER BY 1, 2", {host}))
            out.emplace_back(r[0].value_or(""), r[1].value_or(""));
        return out;
    }

    std::optional<ClusterHost> cluster_host(std::string_view name) override {
        std::vector<Row> rows;
        try {
            rows = MysqlStatement(conn_, "SELECT host, address, smtp_port, base_path, homes FROM qvhost WHERE host = ?")
                       .query({std::string(name)});
        } catch (const Error& e) {
            if (e.code() != Exit::config) throw;
            // no table yet, or one made before base_path and homes (the next change's ensure_tables adds them)
            rows = table_query("SELECT host, address, smtp_port, '', '' FROM qvhost WHERE host = ?", {std::string(name)});
        }
        if (rows.empty()) return std::nullopt;
        return host_from(rows[0]);
    }

    void register_host(const ClusterHost& h) override {
        ensure_tables();
        MysqlStatement(conn_, "REPLACE INTO qvhost (host, address, smtp_port, base_path, homes) VALUES (?, ?, ?, ?, ?)")
            .execute({h.name, h.address, std::int64_t(h.smtp_port), h.base_path, h.homes});
    }

    void stage(FileTransaction&) override {}  // the rows are written already, inside the transaction

    void commit() override {
        if (!in_transaction_) return;
        in_transaction_ = false;
        conn_.commit();
    }

    void rollback() noexcept override {
        if (!in_transaction_) return;
        in_transaction_ = false;
        conn_.rollback();
    }

private:
    static constexpr const char* kDomainColumns =
        "domain, owner, uid, gid, handler, program, hash_method, base_path, chkrcpt";
    static SharedDomain shared_from(const Row& r) {
        SharedDomain d;
        d.name = r[0].value_or("");
        d.owner = r[1].value_or("");
        d.ids = Owner{to_u32(r[2]), to_u32(r[3])};
        d.handler = r[4].value_or("");
        d.vfilter = r[5].value_or("") == "vfilter";
        d.hash = r[6].value_or("");
        d.base_path = r[7].value_or("");
        d.chkrcpt = to_u32(r[8]) != 0;
        return d;
    }
    static SharedDomain alias_from(const Row& r) {
        SharedDomain d;
        d.name = r[0].value_or("");
        d.alias_of = r[1].value_or("");
        return d;
    }
    static ClusterHost host_from(const Row& r) {
        return ClusterHost{r[0].value_or(""), r[1].value_or(""), static_cast<int>(to_u32(r[2])), r[3].value_or(""),
                           r[4].value_or("")};
    }
    static std::vector<SqlValue> domain_values(const SharedDomain& d) {
        return {d.name, d.owner, std::int64_t(d.ids.uid), std::int64_t(d.ids.gid), d.handler,
                std::string(d.vfilter ? "vfilter" : "vdelivermail"), d.hash, d.base_path, std::int64_t(d.chkrcpt)};
    }

    // A mailbox of `table` (indimail: active; indibak: inactive), and all of a domain's.
    std::optional<UserRecord> find_user(const char* table, const DomainRef& d, std::string_view name) {
        auto rows = MysqlStatement(conn_, std::string("SELECT ") + kUserColumns + " FROM " + table +
                                              " WHERE pw_name = ? AND pw_domain = ?")
                        .query({std::string(name), d.name});
        if (rows.empty()) return std::nullopt;
        return user_from(rows[0]);
    }
    // A mailbox's row of `table` changed or removed (with its logins); Error 67 when there is none.
    void update_row(const char* table, const char* kind, const DomainRef& d, const UserRecord& u) {
        change();
        auto n = MysqlStatement(conn_, std::string("UPDATE ") + table +
                                           " SET pw_passwd = ?, pw_uid = ?, pw_gid = ?, pw_gecos = ?, pw_dir = ?, "
                                           "pw_shell = ?, scram = ? WHERE pw_name = ? AND pw_domain = ?")
                     .execute({u.passwd, std::int64_t(u.uid_flags), std::int64_t(u.gid_flags), u.gecos, u.dir, u.quota,
                               scram_value(u), u.name, d.name});
        if (n == 0) throw Error(Exit::nouser, "no " + std::string(kind) + "mailbox " + u.name + "@" + d.name);
    }
    void delete_row(const char* table, const char* kind, const DomainRef& d, std::string_view name) {
        change();
        auto n = MysqlStatement(conn_, std::string("DELETE FROM ") + table + " WHERE pw_name = ? AND pw_domain = ?")
                     .execute({std::string(name), d.name});
        if (n == 0) throw Error(Exit::nouser, "no " + std::string(kind) + "mailbox " + std::string(name) + "@" + d.name);
        table_execute("DELETE FROM lastauth WHERE user = ? AND domain = ?", {std::string(name), d.name});
        table_execute("DELETE FROM hostcntrl WHERE pw_name = ? AND pw_domain = ?", {std::string(name), d.name});
    }

    std::vector<UserRecord> list_users(const char* table, const DomainRef& d) {
        std::vector<UserRecord> out;
        for (auto& r : MysqlStatement(conn_, std::string("SELECT ") + kUserColumns + " FROM " + table +
                                                 " WHERE pw_domain = ? ORDER BY pw_name")
                           .query({d.name}))
            out.push_back(user_from(r));
        return out;
    }

    static RelayGrant grant_from(const Row& r) {
        RelayGrant g;
        g.email = r[0].value_or("");
        g.ip = r[1].value_or("");
        g.timestamp = r[2] ? std::stoll(*r[2]) : 0;
        return g;
    }

    // IndiMail's tables (relay, vfilter) may be missing from a database that IndiMail made; they are
    // created before the first change. (DDL commits implicitly, so never inside a transaction.)
    void ensure_tables() {
        if (tables_checked_ || in_transaction_) return;
        create_missing_tables(conn_);
        tables_checked_ = true;
    }

    // A query or a deletion on a table that may be missing yet (relay, vfilter; IndiMail makes them
    // when it first needs them): then it has no rows.
    std::vector<Row> table_query(const char* sql, const std::vector<SqlValue>& params) {
        try {
            return MysqlStatement(conn_, sql).query(params);
        } catch (const Error& e) {
            if (e.code() == Exit::config) return {};
            throw;
        }
    }
    void table_execute(const char* sql, const std::vector<SqlValue>& params) {
        try {
            MysqlStatement(conn_, sql).execute(params);
        } catch (const Error& e) {
            if (e.code() != Exit::config) throw;
        }
    }

    static std::string email(const DomainRef& d, std::string_view local) { return std::string(local) + "@" + d.name; }

    // LIKE pattern for text ending in `suffix` ('!' escapes LIKE's own wildcards, '_' in a name).
    static std::string like_suffix(std::string_view suffix) {
        std::string p = "%";
        for (char c : suffix) {
            if (c == '%' || c == '_' || c == '!') p += '!';
            p += c;
        }
        return p;
    }
    // LIKE pattern for every address of a domain.
    static std::string domain_pattern(const DomainRef& d) { return like_suffix("@" + d.name); }

    static std::int64_t to_i64(const std::optional<std::string>& s) {
        std::int64_t v = 0;
        if (s) std::from_chars(s->data(), s->data() + s->size(), v);
        return v;
    }

    void change() {
        if (in_transaction_) return;
        try {
            ensure_tables();  // a table a newer version added (DDL commits, so before the transaction)
        } catch (const Error& e) {
            // an account that may not create tables: the change goes on with those there are
            if (e.code() != Exit::noperm) throw;
            tables_checked_ = true;
        }
        conn_.begin();
        in_transaction_ = true;
    }

    MysqlConnection conn_;
    bool in_transaction_ = false;
    bool tables_checked_ = false;
};

}  // namespace

std::unique_ptr<Store> make_mysql_store(const MysqlConfig& config) {
    return std::make_unique<MysqlStore>(config);
}

}  // namespace qv
