// MariaDB connections through Connector/C: configuration, connection, prepared statements.
//
// Where the settings come from, highest first:
//   1. --mysql-defaults-file / --mysql-group on the command line,
//   2. MYSQL_READ_DEFAULT_FILE / MYSQL_READ_DEFAULT_GROUP in the environment,
//   3. control/host.mysql, IndiMail's one line host:user:password:socket-or-port[:ssl|nossl]
//      (the database from MYSQL_DATABASE, default indimail),
//   4. MariaDB's option files, groups [client] and [qvmail] (for what host.mysql leaves empty,
//      e.g. the password, which is better kept out of host.mysql).
// The MySQL backend is in use when one of 1-3 is present. Passwords never appear in messages.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

struct st_mysql;
struct st_mysql_stmt;

namespace qv {

struct Paths;

struct MysqlOverrides {  // from the command line
    std::optional<std::string> defaults_file;
    std::optional<std::string> group;
};

struct MysqlConfig {
    std::string source;               // where the settings came from, for messages
    std::optional<std::string> host;  // nullopt: from option files
    std::optional<std::string> user;
    std::optional<std::string> password;
    std::optional<std::string> socket;
    unsigned port = 0;
    bool tls = false;
    std::string database = "indimail";
    std::optional<std::string> defaults_file;
    std::string group = "qvmail";
    unsigned connect_timeout = 5;  // seconds
    unsigned read_timeout = 30;
    unsigned write_timeout = 30;

    // "MariaDB at localhost via /run/mysqld/mysqld.sock as indimail (database indimail)": no password.
    std::string describe() const;
};

// The MariaDB settings of this host, or nullopt when nothing selects the MySQL backend.
// Throws Error 78 for a malformed host.mysql.
std::optional<MysqlConfig> mysql_config(const Paths& paths, const MysqlOverrides& overrides = {});

// Parses one host.mysql line. Throws Error 78.
MysqlConfig parse_host_mysql(std::string_view line, const std::filesystem::path& file);

using SqlValue = std::variant<std::monostate, std::int64_t, std::string>;  // NULL, integer, text

class MysqlConnection;

// A prepared statement: parameters are bound as values, never spliced into the SQL text.
class MysqlStatement {
public:
    MysqlStatement(MysqlConnection& conn, std::string_view sql);
    ~MysqlStatement();
    MysqlStatement(const MysqlStatement&) = delete;
    MysqlStatement& operator=(const MysqlStatement&) = delete;

    // Runs the statement; returns the number of rows changed (matched, for UPDATE).
    std::uint64_t execute(const std::vector<SqlValue>& params = {});
    // Runs a SELECT and returns every row, each column as text (nullopt for NULL).
    std::vector<std::vector<std::optional<std::string>>> query(const std::vector<SqlValue>& params = {});

private:
    [[noreturn]] void fail(std::string_view what);
    void bind(const std::vector<SqlValue>& params);
    MysqlConnection& conn_;
    st_mysql_stmt* stmt_;
    std::string sql_;
};

class MysqlConnection {
public:
    // Connects; throws Error 69 naming the server (never the password) when it cannot. A missing
    // database is created (as IndiMail does) unless `create_database` is false (then: Error 78).
    explicit MysqlConnection(const MysqlConfig& config, bool create_database = true);
    ~MysqlConnection();
    MysqlConnection(const MysqlConnection&) = delete;
    MysqlConnection& operator=(const MysqlConnection&) = delete;

    void exec(std::string_view sql);  // statements without user data (DDL, transactions)
    void begin();
    void commit();
    void rollback() noexcept;
    std::string server_version();
    const MysqlConfig& config() const noexcept { return config_; }
    st_mysql* handle() noexcept { return mysql_; }

    // The error for a failed call: 9 for a duplicate key, 65 for data the column cannot hold, 69 when
    // the server is gone, 75 for a deadlock or lock wait timeout (the transaction was rolled back), 70
    // otherwise; the message names the server and `what`.
    [[noreturn]] void fail(std::string_view what, unsigned err, std::string_view text);

private:
    MysqlConfig config_;
    st_mysql* mysql_;
};

// IndiMail's tables, as qvmail creates them (qmailctl db init): name and CREATE statement.
struct TableDefinition {
    std::string_view name;
    std::string_view create;
};
const std::vector<TableDefinition>& indimail_tables();
// Creates the missing tables; returns the names created.
std::vector<std::string> create_missing_tables(MysqlConnection& conn);

}  // namespace qv
