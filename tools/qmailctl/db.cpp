// qmailctl db - the MariaDB backend's schema: create IndiMail's tables, show what the server holds.
#include <CLI/CLI.hpp>

#include <filesystem>

#include "qmailctl.hpp"
#include "qvmail/domain_sync.hpp"
#include "qvmail/error.hpp"
#include "qvmail/mysql.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"

namespace qv::qmailctl {

namespace {

MysqlConfig require_mysql(const Program& prog) {
    auto config = mysql_config(Paths::from_env(), prog.mysql);
    if (!config)
        throw Error(Exit::config,
                    "no MariaDB configured: write control/host.mysql, set MYSQL_READ_DEFAULT_FILE or "
                    "MYSQL_READ_DEFAULT_GROUP, or give --mysql-defaults-file");
    return *config;
}

int run_init(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    MysqlConfig config = require_mysql(prog);
    MysqlConnection conn(config);
    std::vector<std::string> created;
    if (!prog.common.dry_run) {
        created = create_missing_tables(conn);
        if (!created.empty()) {
            std::string list;
            for (auto& t : created) list += (list.empty() ? "" : ", ") + t;
            audit(prog.name, "created tables " + list + " on " + config.describe());
        }
    }
    // this host's domains become shared: rows for those the database lacks (after a dry run's tables
    // would exist, so only when they do)
    std::vector<std::string> imported;
    Paths paths = Paths::from_env();
    std::error_code ec;
    if ((!prog.common.dry_run || created.empty()) && std::filesystem::is_directory(paths.qmailhome, ec)) {
        auto lock = lock_for_change(paths, prog.common);
        auto store = make_mysql_store(config);
        for (auto& c : import_domains(paths, *store, prog.common.dry_run))
            imported.push_back(c.domain + (c.detail.empty() ? "" : " (" + c.detail + ")"));
        if (!imported.empty() && !prog.common.dry_run)
            audit(prog.name, "recorded " + std::to_string(imported.size()) + " domain(s) of this host in " +
                                 config.database);
    }
    if (rep.json()) {
        rep.object(Json::object()
                       .set("server", config.describe())
                       .set("database", config.database)
                       .set("created", created)
                       .set("imported", imported));
        return 0;
    }
    if (created.empty()) rep.line(config.database + ": every table exists (" + config.describe() + ")");
    for (auto& t : created) rep.line(config.database + ": created table " + t);
    for (auto& d : imported)
        rep.line(config.database + ": " + (prog.common.dry_run ? "would record" : "recorded") + " domain " + d);
    return 0;
}

int run_status(const Program& prog) {
    Reporter rep(prog.name, prog.common);
    MysqlConfig config = require_mysql(prog);
    MysqlConnection conn(config, false);
    std::string version = conn.server_version();
    Json tables = Json::array();
    std::vector<std::string> lines;
    for (auto& t : indimail_tables()) {
        auto info = MysqlStatement(conn,
                                   "SELECT engine, table_rows FROM information_schema.tables "
                                   "WHERE table_schema = ? AND table_name = ?")
                        .query({config.database, std::string(t.name)});
        Json j = Json::object().set("table", std::string(t.name)).set("exists", !info.empty());
        std::string line = std::string(t.name) + ": ";
        if (info.empty()) {
            j.set("rows", Json());
            line += "missing (qmailctl db init creates it)";
        } else {
            // COUNT(*) is exact; information_schema's table_rows is an InnoDB estimate.
            auto count = MysqlStatement(conn, "SELECT COUNT(*) FROM `" + std::string(t.name) + "`").query();
            std::string rows = count.empty() ? "0" : count[0][0].value_or("0");
            std::string engine = info[0][0].value_or("?");
            j.set("rows", static_cast<std::int64_t>(std::stoll(rows))).set("engine", engine);
            line += rows + " rows, " + engine;
            if (engine != "InnoDB") line += " (not transactional: failed changes cannot be rolled back)";
        }
        tables.push(std::move(j));
        lines.push_back(line);
    }
    if (rep.json()) {
        rep.object(Json::object()
                       .set("server", config.describe())
                       .set("version", version)
                       .set("database", config.database)
                       .set("tables", std::move(tables)));
    } else {
        rep.line(config.describe());
        rep.line("server version " + version);
        for (auto& l : lines) rep.line("  " + l);
    }
    return 0;
}

}  // namespace

void setup_db(CLI::App& app, Program& prog) {
    CLI::App* db = app.add_subcommand("db", "The MariaDB backend: create IndiMail's tables, show the server's state");
    db->require_subcommand(1);
    CLI::App* init = db->add_subcommand(
        "init", "Create the tables that are missing, and record this host's domains the database lacks (idempotent)");
    add_common_options(*init, prog.common, opt_json | opt_dry_run | opt_lock_wait);
    add_mysql_options(*init, prog);
    init->callback([&prog] { prog.action = [&prog] { return run_init(prog); }; });
    CLI::App* status = db->add_subcommand("status", "Show the server version, the database, and each table's rows");
    add_common_options(*status, prog.common, opt_json);
    add_mysql_options(*status, prog);
    status->callback([&prog] { prog.action = [&prog] { return run_status(prog); }; });
    db->footer(
        "Exit status: 0 done; 64 usage; 69 the server cannot be reached (the message names it, never the\n"
        "password); 77 the account lacks privileges; 78 no MariaDB configured. See qmailctl(8).");
}

}  // namespace qv::qmailctl
