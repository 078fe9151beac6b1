// The MySQL backend of the store: IndiMail's tables `indimail` (mailboxes) and `valias` (aliases).
// Changes run in one transaction, opened at the first change and committed after the files of the
// same change are in place (see apply_change in domain.cpp).
#include <algorithm>
#include <charconv>

#include "qvmail/error.hpp"
#include "qvmail/mysql.hpp"
#include "qvmail/store.hpp"

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
    return u;
}

constexpr const char* kUserColumns = "pw_name, pw_passwd, pw_uid, pw_gid, pw_gecos, pw_dir, pw_shell";

class MysqlStore final : public Store {
public:
    explicit MysqlStore(const MysqlConfig& config) : conn_(config) {}

    std::string_view backend() const noexcept override { return "mysql"; }

    std::optional<UserRecord> get_user(const DomainRef& d, std::string_view name) override {
        auto rows = MysqlStatement(conn_, std::string("SELECT ") + kUserColumns +
                                              " FROM indimail WHERE pw_name = ? AND pw_domain = ?")
                        .query({std::string(name), d.name});
        if (rows.empty()) return std::nullopt;
        return user_from(rows[0]);
    }

    std::vector<UserRecord> users(const DomainRef& d) override {
        std::vector<UserRecord> out;
        for (auto& r : MysqlStatement(conn_, std::string("SELECT ") + kUserColumns +
                                                 " FROM indimail WHERE pw_domain = ? ORDER BY pw_name")
                           .query({d.name}))
            out.push_back(user_from(r));
        return out;
    }

    std::vector<std::string> aliases(const DomainRef& d) override {
        std::vector<std::string> out;
        for (auto& r :
             MysqlStatement(conn_, "SELECT DISTINCT alias FROM valias WHERE domain = ? ORDER BY alias").query({d.name}))
            out.push_back(r[0].value_or(""));
        return out;
    }

    std::vector<std::string> alias_lines(const DomainRef& d, std::string_view alias) override {
        std::vector<std::string> out;
        for (auto& r : MysqlStatement(conn_,
                                      "SELECT valias_line FROM valias WHERE alias = ? AND domain = ? "
                                      "ORDER BY timestamp, valias_line")
                           .query({std::string(alias), d.name}))
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
    }

    void add_user(const DomainRef& d, const UserRecord& u) override {
        change();
        try {
            MysqlStatement(conn_,
                           "INSERT INTO indimail (pw_name, pw_domain, pw_passwd, pw_uid, pw_gid, pw_gecos, "
                           "pw_dir, pw_shell) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .execute({u.name, d.name, u.passwd, std::int64_t(u.uid_flags), std::int64_t(u.gid_flags), u.gecos,
                          u.dir, u.quota});
        } catch (const Error& e) {
            if (e.code() == Exit::exists)
                throw Error(Exit::exists, "mailbox " + u.name + "@" + d.name + " already exists");
            throw;
        }
    }

    void update_user(const DomainRef& d, const UserRecord& u) override {
        change();
        auto n = MysqlStatement(conn_,
                                "UPDATE indimail SET pw_passwd = ?, pw_uid = ?, pw_gid = ?, pw_gecos = ?, "
                                "pw_dir = ?, pw_shell = ? WHERE pw_name = ? AND pw_domain = ?")
                     .execute({u.passwd, std::int64_t(u.uid_flags), std::int64_t(u.gid_flags), u.gecos, u.dir, u.quota,
                               u.name, d.name});
        if (n == 0) throw Error(Exit::nouser, "no mailbox " + u.name + "@" + d.name);
    }

    void remove_user(const DomainRef& d, std::string_view name) override {
        change();
        auto n = MysqlStatement(conn_, "DELETE FROM indimail WHERE pw_name = ? AND pw_domain = ?")
                     .execute({std::string(name), d.name});
        if (n == 0) throw Error(Exit::nouser, "no mailbox " + std::string(name) + "@" + d.name);
    }

    void set_alias(const DomainRef& d, std::string_view alias, const std::vector<std::string>& lines) override {
        change();
        MysqlStatement(conn_, "DELETE FROM valias WHERE alias = ? AND domain = ?")
            .execute({std::string(alias), d.name});
        MysqlStatement insert(conn_, "INSERT INTO valias (alias, domain, valias_line) VALUES (?, ?, ?)");
        for (auto& l : lines) insert.execute({std::string(alias), d.name, l});
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
    void change() {
        if (in_transaction_) return;
        conn_.begin();
        in_transaction_ = true;
    }

    MysqlConnection conn_;
    bool in_transaction_ = false;
};

}  // namespace

std::unique_ptr<Store> make_mysql_store(const MysqlConfig& config) {
    return std::make_unique<MysqlStore>(config);
}

}  // namespace qv
