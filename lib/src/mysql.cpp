#include "qvmail/mysql.hpp"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include <dlfcn.h>

#include <cstring>
#include <set>

#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> nonempty(std::string_view s) {
    if (s.empty()) return std::nullopt;
    return std::string(s);
}

const char* c_or_null(const std::optional<std::string>& s) {
    return s ? s->c_str() : nullptr;
}

// Connector/C is loaded when a MariaDB backend is first used, not at program start (as IndiMail's
// --enable-dlload-mysql does): the mail programs and every command on the files store then start
// without mapping libmariadb and the TLS libraries it pulls in (3.5 ms of every start, measured).
#define QV_MYSQL_FUNCTIONS        \
    X(mysql_close)                \
    X(mysql_errno)                \
    X(mysql_error)                \
    X(mysql_fetch_fields)         \
    X(mysql_free_result)          \
    X(mysql_get_server_info)      \
    X(mysql_init)                 \
    X(mysql_num_fields)           \
    X(mysql_optionsv)             \
    X(mysql_query)                \
    X(mysql_real_connect)         \
    X(mysql_real_query)           \
    X(mysql_select_db)            \
    X(mysql_stmt_affected_rows)   \
    X(mysql_stmt_attr_set)        \
    X(mysql_stmt_bind_param)      \
    X(mysql_stmt_bind_result)     \
    X(mysql_stmt_close)           \
    X(mysql_stmt_errno)           \
    X(mysql_stmt_error)           \
    X(mysql_stmt_execute)         \
    X(mysql_stmt_fetch)           \
    X(mysql_stmt_fetch_column)    \
    X(mysql_stmt_free_result)     \
    X(mysql_stmt_init)            \
    X(mysql_stmt_param_count)     \
    X(mysql_stmt_prepare)         \
    X(mysql_stmt_result_metadata) \
    X(mysql_stmt_store_result)    \
    X(mysql_store_result)

struct MysqlApi {
#define X(name) decltype(&::name) name = nullptr;
    QV_MYSQL_FUNCTIONS
#undef X
};

const MysqlApi& api() {
    static const MysqlApi loaded = [] {
        MysqlApi a;
        void* lib = nullptr;
        for (const char* name : {"libmariadb.so.3", "libmariadb.so"})
            if ((lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
        if (!lib)
            throw Error(Exit::unavailable, std::string("cannot load MariaDB Connector/C (libmariadb.so.3; Debian "
                                                       "package libmariadb3): ") +
                                               ::dlerror());
#define X(name)                                                        \
    a.name = reinterpret_cast<decltype(&::name)>(::dlsym(lib, #name)); \
    if (!a.name) throw Error(Exit::unavailable, "libmariadb.so.3 lacks " #name ": too old a version");
        QV_MYSQL_FUNCTIONS
#undef X
        return a;
    }();
    return loaded;
}

}  // namespace

std::string MysqlConfig::describe() const {
    std::string d = "MariaDB at " + host.value_or("the option files' host");
    if (socket)
        d += " via " + *socket;
    else if (port)
        d += " port " + std::to_string(port);
    if (user) d += " as " + *user;
    d += " (database " + database + ", settings from " + source + ")";
    return d;
}

MysqlConfig parse_host_mysql(std::string_view line, const fs::path& file) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) throw Error(Exit::config, file.string() + ": empty; expected host:user:password:socket-or-port");
    std::vector<std::string_view> f;
    while (true) {
        std::size_t c = line.find(':');
        f.push_back(line.substr(0, c));
        if (c == std::string_view::npos) break;
        line.remove_prefix(c + 1);
    }
    if (f.size() > 5)
        throw Error(Exit::config, file.string() +
                                      ": too many ':'-separated fields (host:user:password:socket-or-port"
                                      "[:ssl|nossl]; a password cannot contain ':')");
    MysqlConfig c;
    c.source = file.string();
    c.host = nonempty(f[0]);
    if (f.size() > 1) c.user = nonempty(f[1]);
    if (f.size() > 2) c.password = nonempty(f[2]);
    if (f.size() > 3 && !f[3].empty()) {
        if (f[3][0] == '/' || f[3][0] == '.') {
            c.socket = std::string(f[3]);
        } else {
            unsigned port = 0;
            for (char ch : f[3]) {
                if (ch < '0' || ch > '9' || port > 65535)
                    throw Error(Exit::config, file.string() + ": the fourth field is neither a socket path nor a port");
                port = port * 10 + static_cast<unsigned>(ch - '0');
            }
            if (port == 0 || port > 65535) throw Error(Exit::config, file.string() + ": port out of range");
            c.port = port;
        }
    }
    if (f.size() > 4) {
        if (f[4] == "ssl")
            c.tls = true;
        else if (f[4] != "nossl" && !f[4].empty())
            throw Error(Exit::config, file.string() + ": the fifth field must be ssl or nossl");
    }
    return c;
}

std::optional<MysqlConfig> mysql_config(const Paths& paths, const MysqlOverrides& o) {
    MysqlConfig c;
    if (o.defaults_file || o.group) {
        c.source = o.defaults_file ? "--mysql-defaults-file " + *o.defaults_file : "--mysql-group " + *o.group;
        c.defaults_file = o.defaults_file;
        if (o.group) c.group = *o.group;
    } else if (paths.mysql_default_file || paths.mysql_default_group) {
        c.source = paths.mysql_default_file ? "MYSQL_READ_DEFAULT_FILE=" + *paths.mysql_default_file
                                            : "MYSQL_READ_DEFAULT_GROUP=" + *paths.mysql_default_group;
        c.defaults_file = paths.mysql_default_file;
        if (paths.mysql_default_group) c.group = *paths.mysql_default_group;
    } else {
        // A host.mysql this user cannot read is an error, not the files store: the mailboxes are elsewhere.
        fs::path file = paths.control("host.mysql");
        ControlFile f = ControlFile::load(file);
        if (!f.exists()) return std::nullopt;
        c = parse_host_mysql(std::string_view(f.text()).substr(0, f.text().find('\n')), file);
    }
    if (c.defaults_file && fs::path(*c.defaults_file).is_relative())
        c.defaults_file = fs::absolute(*c.defaults_file).string();  // Connector/C resolves it against the cwd
    if (paths.mysql_database) c.database = *paths.mysql_database;
    return c;
}

// ---------------------------------------------------------------------------------------------

MysqlConnection::MysqlConnection(const MysqlConfig& config, bool create_database)
    : config_(config), mysql_(api().mysql_init(nullptr)) {
    if (!mysql_) throw Error(Exit::software, "cannot initialise the MariaDB client library");
    api().mysql_optionsv(mysql_, MYSQL_OPT_CONNECT_TIMEOUT, &config_.connect_timeout);
    api().mysql_optionsv(mysql_, MYSQL_OPT_READ_TIMEOUT, &config_.read_timeout);
    api().mysql_optionsv(mysql_, MYSQL_OPT_WRITE_TIMEOUT, &config_.write_timeout);
    api().mysql_optionsv(mysql_, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (config_.defaults_file) api().mysql_optionsv(mysql_, MYSQL_READ_DEFAULT_FILE, config_.defaults_file->c_str());
    api().mysql_optionsv(mysql_, MYSQL_READ_DEFAULT_GROUP, config_.group.c_str());
    if (config_.tls) {
        my_bool on = 1;
        api().mysql_optionsv(mysql_, MYSQL_OPT_SSL_ENFORCE, &on);
    }
    if (!api().mysql_real_connect(mysql_, c_or_null(config_.host), c_or_null(config_.user), c_or_null(config_.password),
                                  nullptr, config_.port, c_or_null(config_.socket), CLIENT_FOUND_ROWS)) {
        unsigned err = api().mysql_errno(mysql_);
        std::string text = api().mysql_error(mysql_);
        api().mysql_close(mysql_);
        mysql_ = nullptr;
        throw Error(Exit::unavailable,
                    "cannot connect to " + config_.describe() + ": " + text + " (error " + std::to_string(err) + ")");
    }
    try {
        if (api().mysql_select_db(mysql_, config_.database.c_str()) != 0) {
            unsigned err = api().mysql_errno(mysql_);
            if (err != ER_BAD_DB_ERROR) fail("selecting the database", err, api().mysql_error(mysql_));
            if (!create_database)
                throw Error(Exit::config, "database " + config_.database + " does not exist on " + config_.describe() +
                                              " (qmailctl db init creates it)");
            std::string create = "CREATE DATABASE IF NOT EXISTS `" + config_.database + "`";
            if (config_.database.find('`') != std::string::npos || api().mysql_query(mysql_, create.c_str()) != 0 ||
                api().mysql_select_db(mysql_, config_.database.c_str()) != 0)
                fail("creating database " + config_.database, api().mysql_errno(mysql_), api().mysql_error(mysql_));
        }
    } catch (...) {
        api().mysql_close(mysql_);
        mysql_ = nullptr;
        throw;
    }
}

MysqlConnection::~MysqlConnection() {
    if (mysql_) api().mysql_close(mysql_);
}

void MysqlConnection::fail(std::string_view what, unsigned err, std::string_view text) {
    Exit code = Exit::software;
    switch (err) {
        case ER_DUP_ENTRY:
            code = Exit::exists;
            break;
        case ER_DATA_TOO_LONG:
        case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
        case ER_WARN_DATA_OUT_OF_RANGE:
        case ER_BAD_NULL_ERROR:
            code = Exit::dataerr;
            break;
        case ER_NO_SUCH_TABLE:
        case ER_BAD_FIELD_ERROR:  // a table made by an earlier version (qmailctl db init adds the column)
            code = Exit::config;
            break;
        case ER_LOCK_DEADLOCK:
        case ER_LOCK_WAIT_TIMEOUT:
            code = Exit::tempfail;  // the transaction was rolled back: try again
            break;
        case ER_ACCESS_DENIED_ERROR:
        case ER_DBACCESS_DENIED_ERROR:
        case ER_TABLEACCESS_DENIED_ERROR:
            code = Exit::noperm;
            break;
        default:
            if (err >= 2000 && err < 3000) code = Exit::unavailable;  // client errors: server gone, lost, ...
    }
    std::string msg = std::string(what) + " on " + config_.describe() + ": " + std::string(text);
    if (err == ER_NO_SUCH_TABLE) msg += " (run qmailctl db init)";
    throw Error(code, msg);
}

void MysqlConnection::exec(std::string_view sql) {
    if (api().mysql_real_query(mysql_, sql.data(), sql.size()) != 0)
        fail(std::string(sql.substr(0, sql.find(' ', 12))), api().mysql_errno(mysql_), api().mysql_error(mysql_));
    if (MYSQL_RES* r = api().mysql_store_result(mysql_)) api().mysql_free_result(r);
}

void MysqlConnection::begin() {
    exec("START TRANSACTION");
}
void MysqlConnection::commit() {
    exec("COMMIT");
}
void MysqlConnection::rollback() noexcept {
    if (mysql_) api().mysql_query(mysql_, "ROLLBACK");
}

std::string MysqlConnection::server_version() {
    return api().mysql_get_server_info(mysql_);
}

// ---------------------------------------------------------------------------------------------

MysqlStatement::MysqlStatement(MysqlConnection& conn, std::string_view sql)
    : conn_(conn), stmt_(api().mysql_stmt_init(conn.handle())), sql_(sql) {
    if (!stmt_) conn_.fail("preparing a statement", api().mysql_errno(conn.handle()), api().mysql_error(conn.handle()));
    if (api().mysql_stmt_prepare(stmt_, sql_.data(), sql_.size()) != 0) {
        try {
            fail("preparing");
        } catch (...) {  // a throwing constructor runs no destructor
            api().mysql_stmt_close(stmt_);
            stmt_ = nullptr;
            throw;
        }
    }
}

MysqlStatement::~MysqlStatement() {
    if (stmt_) api().mysql_stmt_close(stmt_);
}

void MysqlStatement::fail(std::string_view what) {
    unsigned err = api().mysql_stmt_errno(stmt_);
    std::string text = api().mysql_stmt_error(stmt_);
    std::string verb = sql_.substr(0, sql_.find(' '));
    conn_.fail(std::string(what) + " " + verb, err, text);
}

void MysqlStatement::bind(const std::vector<SqlValue>& params) {
    if (params.size() != api().mysql_stmt_param_count(stmt_))
        throw Error(Exit::software, "statement takes " + std::to_string(api().mysql_stmt_param_count(stmt_)) +
                                        " parameters, given " + std::to_string(params.size()));
    if (params.empty()) return;
    std::vector<MYSQL_BIND> b(params.size());
    std::memset(b.data(), 0, sizeof(MYSQL_BIND) * b.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (auto* s = std::get_if<std::string>(&params[i])) {
            b[i].buffer_type = MYSQL_TYPE_STRING;
            b[i].buffer = const_cast<char*>(s->data());
            b[i].buffer_length = s->size();
        } else if (auto* n = std::get_if<std::int64_t>(&params[i])) {
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = const_cast<std::int64_t*>(n);
        } else {
            b[i].buffer_type = MYSQL_TYPE_NULL;
        }
    }
    if (api().mysql_stmt_bind_param(stmt_, b.data()) != 0) fail("binding");  // copies the binds, not the data
}

std::uint64_t MysqlStatement::execute(const std::vector<SqlValue>& params) {
    bind(params);
    if (api().mysql_stmt_execute(stmt_) != 0) fail("executing");
    return api().mysql_stmt_affected_rows(stmt_);
}

std::vector<std::vector<std::optional<std::string>>> MysqlStatement::query(const std::vector<SqlValue>& params) {
    bind(params);
    my_bool update_max = 1;
    api().mysql_stmt_attr_set(stmt_, STMT_ATTR_UPDATE_MAX_LENGTH, &update_max);
    if (api().mysql_stmt_execute(stmt_) != 0) fail("executing");
    if (api().mysql_stmt_store_result(stmt_) != 0) fail("reading the result of");
    MYSQL_RES* meta = api().mysql_stmt_result_metadata(stmt_);
    std::vector<std::vector<std::optional<std::string>>> rows;
    if (!meta) return rows;
    unsigned n = api().mysql_num_fields(meta);
    MYSQL_FIELD* fields = api().mysql_fetch_fields(meta);
    std::vector<MYSQL_BIND> b(n);
    std::memset(b.data(), 0, sizeof(MYSQL_BIND) * n);
    std::vector<std::vector<char>> bufs(n);
    std::vector<unsigned long> lengths(n);
    std::vector<my_bool> nulls(n);
    for (unsigned i = 0; i < n; ++i) {
        bufs[i].resize(std::max<unsigned long>(fields[i].max_length, 64) + 1);
        b[i].buffer_type = MYSQL_TYPE_STRING;
        b[i].buffer = bufs[i].data();
        b[i].buffer_length = bufs[i].size();
        b[i].length = &lengths[i];
        b[i].is_null = &nulls[i];
    }
    api().mysql_free_result(meta);
    if (api().mysql_stmt_bind_result(stmt_, b.data()) != 0) fail("binding the result of");
    for (;;) {
        int r = api().mysql_stmt_fetch(stmt_);
        if (r == MYSQL_NO_DATA) break;
        if (r == 1) fail("fetching from");
        std::vector<std::optional<std::string>> row(n);
        for (unsigned i = 0; i < n; ++i) {
            if (nulls[i]) continue;
            if (lengths[i] > bufs[i].size()) {  // MYSQL_DATA_TRUNCATED: fetch the column again, whole
                std::string whole(lengths[i], '\0');
                MYSQL_BIND one;
                std::memset(&one, 0, sizeof one);
                one.buffer_type = MYSQL_TYPE_STRING;
                one.buffer = whole.data();
                one.buffer_length = whole.size();
                if (api().mysql_stmt_fetch_column(stmt_, &one, i, 0) != 0) fail("fetching a column from");
                row[i] = std::move(whole);
            } else {
                row[i] = std::string(bufs[i].data(), lengths[i]);
            }
        }
        rows.push_back(std::move(row));
    }
    api().mysql_stmt_free_result(stmt_);
    return rows;
}

// ---------------------------------------------------------------------------------------------

const std::vector<TableDefinition>& indimail_tables() {
    // IndiMail's layouts (indimail.h: SMALL_TABLE_LAYOUT with the scram column, VALIAS_TABLE_LAYOUT,
    // RELAY_TABLE_LAYOUT, FILTER_TABLE_LAYOUT), on InnoDB for transactions.
#define QV_USERS_LAYOUT                                                                                   \
    "(pw_name char(40) not null, pw_domain char(67) not null, pw_passwd char(128) not null, pw_uid int, " \
    "pw_gid int, pw_gecos char(48) not null, pw_dir char(156), pw_shell char(30), scram char(255), "      \
    "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP on update CURRENT_TIMESTAMP not null, "                \
    "primary key (pw_name, pw_domain), index pw_gecos (pw_gecos(25)), index pw_uid (pw_uid)) "            \
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    static const std::vector<TableDefinition> tables = {
        {"indimail", "CREATE TABLE IF NOT EXISTS indimail " QV_USERS_LAYOUT},
        {"indibak", "CREATE TABLE IF NOT EXISTS indibak " QV_USERS_LAYOUT},
        {"valias",
         "CREATE TABLE IF NOT EXISTS valias (alias char(40) not null, domain char(67) not null, "
         "valias_line char(190) not null, "
         "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP on update CURRENT_TIMESTAMP NOT NULL, "
         "unique index(alias, domain, valias_line), index (alias, domain)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"},
        {"lastauth",
         "CREATE TABLE IF NOT EXISTS lastauth (user char(40) not null, domain char(67) not null, "
         "service char(10) not null, remote_ip char(46) not null, quota int not null, gecos char(48) not null, "
         "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL, primary key (user, domain, service), "
         "index gecos (gecos), index quota (quota), index timestamp (timestamp)) "
         "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"},
        {"relay",
         "CREATE TABLE IF NOT EXISTS relay (email char(96) not null, ipaddr char(46) not null, timestamp int, "
         "unique index (email, ipaddr), index(ipaddr), index(timestamp)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"},
        {"vfilter",
         "CREATE TABLE IF NOT EXISTS vfilter (emailid char(107) not null, filter_no smallint not null, "
         "filter_name char(32) not null, header_name smallint not null, comparision tinyint not null, "
         "keyword char(64) not null, destination char(156) not null, bounce_action char(64) not null, "
         "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP on update CURRENT_TIMESTAMP NOT NULL, "
         "primary key (emailid, filter_no), "
         "unique index (emailid, header_name, comparision, keyword, destination)) "
         "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"},
        // qvmail's own: each domain's settings, so that every mail host sharing the database derives the
        // same users/assign, control files and domain directory from it (qmailctl sync)
        {"qvdomain",
         "CREATE TABLE IF NOT EXISTS qvdomain (domain char(67) not null, owner char(65) not null, "
         "uid int not null, gid int not null, handler char(190) not null, program char(16) not null, "
         "hash_method char(16) not null, base_path char(156) not null, chkrcpt tinyint not null, "
         "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP on update CURRENT_TIMESTAMP NOT NULL, "
         "primary key (domain)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"},
        // qvmail's own: the names removed from qvdomain and aliasdomain, so that qmailctl sync takes a domain
        // away from a host only when the database says it was removed (never for a row it merely lacks)
        {"qvdomain_removed",
         "CREATE TABLE IF NOT EXISTS qvdomain_removed (domain char(67) not null, "
         "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP on update CURRENT_TIMESTAMP NOT NULL, "
         "primary key (domain)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"},
        // IndiMail's (CNTRL_TABLE_LAYOUT): the host a mailbox lives on (qvmail leaves pw_passwd empty)
        {"hostcntrl",
         "CREATE TABLE IF NOT EXISTS hostcntrl (pw_name char(40) not null, pw_domain char(67) not null, "
         "pw_passwd char(128) not null, host char(64) not null, "
         "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL, primary key (pw_name, pw_domain), index (host)) "
         "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"},
        // qvmail's own: each host's address and SMTP port, for the mail of its mailboxes that other hosts take;
        // its base path and how the others reach its homes (an rsync destination), for vmoduser --host
        {"qvhost",
         "CREATE TABLE IF NOT EXISTS qvhost (host char(64) not null, address char(46) not null, "
         "smtp_port int not null, base_path char(156) not null default '', homes char(190) not null default '', "
         "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP on update CURRENT_TIMESTAMP NOT NULL, "
         "primary key (host)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"},
        // IndiMail's (ALIASDOMAIN_TABLE_LAYOUT): alias domain -> real domain
        {"aliasdomain",
         "CREATE TABLE IF NOT EXISTS aliasdomain (alias char(64) not null, domain char(67), "
         "timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP on update CURRENT_TIMESTAMP NOT NULL, "
         "primary key (alias)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"},
    };
#undef QV_USERS_LAYOUT
    return tables;
}

std::vector<std::string> create_missing_tables(MysqlConnection& conn) {
    std::set<std::string> have;
    for (auto& row : MysqlStatement(conn, "SHOW TABLES").query())
        if (row[0]) have.insert(*row[0]);
    std::vector<std::string> created;
    for (auto& t : indimail_tables()) {
        if (have.count(std::string(t.name))) continue;
        conn.exec(t.create);
        created.emplace_back(t.name);
    }
    // columns added since a table was first made (ALTER commits at once: not inside a change)
    if (have.count("qvhost") && MysqlStatement(conn, "SHOW COLUMNS FROM qvhost LIKE 'homes'").query().empty())
        conn.exec("ALTER TABLE qvhost ADD COLUMN base_path char(156) not null default '', "
                  "ADD COLUMN homes char(190) not null default ''");
    return created;
}

}  // namespace qv
