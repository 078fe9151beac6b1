// Where mailboxes and aliases live. Two backends sit behind this interface: `files` (the embedded
// default, below) and `mysql` (IndiMail's tables). Domain registration itself (users/assign, the
// control files, the domain directory) is the same for both and lives in the domain module.
//
// The files backend keeps, per domain directory:
//   vpasswd       one line per mailbox, vpopmail's field order (':' never appears inside a field):
//                 name:passwd:uid:gid:gecos:dir:quota
//                 uid holds IndiMail's pw_uid (1 for an ordinary mailbox), gid the pw_gid
//                 restriction bits (NO_POP, NO_IMAP, ...), quota IndiMail's pw_shell ("NOQUOTA",
//                 bytes, or "<bytes>S,<count>C").
//   vpasswd.cdb   key: the name; value: the rest of the line, "passwd:uid:gid:gecos:dir:quota".
//                 Rebuilt with every change (or by qmailctl cdb after bulk adds); readers use it
//                 only when it is not older than vpasswd.
//   .qmail-<alias>  one delivery line per target ('.' in the alias is written ':' as qmail-local
//                 expects), e.g. "&postmaster@example.com".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/atomic_file.hpp"
#include "qvmail/progress.hpp"

namespace qv {

class FileTransaction;
struct Paths;

// IndiMail's per-user restriction bits, kept in pw_gid (values from IndiMail's indimail.h; note that
// vpopmail numbers several of them differently).
namespace userflag {
constexpr std::uint32_t no_passwd_chng = 0x01;
constexpr std::uint32_t no_pop = 0x02;
constexpr std::uint32_t no_webmail = 0x04;
constexpr std::uint32_t no_imap = 0x08;
constexpr std::uint32_t bounce_mail = 0x10;
constexpr std::uint32_t no_relay = 0x20;
constexpr std::uint32_t no_dialup = 0x40;
constexpr std::uint32_t qa_admin = 0x80;
constexpr std::uint32_t v_override = 0x100;
constexpr std::uint32_t no_smtp = 0x200;
constexpr std::uint32_t v_user0 = 0x400;
constexpr std::uint32_t v_user1 = 0x800;
constexpr std::uint32_t v_user2 = 0x1000;
constexpr std::uint32_t v_user3 = 0x2000;
}  // namespace userflag

struct UserRecord {
    std::string name;               // pw_name, the local part
    std::string passwd;             // pw_passwd, a crypt(3) hash
    std::uint32_t uid_flags = 1;    // pw_uid
    std::uint32_t gid_flags = 0;    // pw_gid: userflag bits
    std::string gecos;              // pw_gecos
    std::string dir;                // pw_dir: the mailbox's home (its Maildir is dir/Maildir)
    std::string quota = "NOQUOTA";  // pw_shell
    // IndiMail's scram column: "{CRAM}<clear text>" for a mailbox that may use CRAM-MD5 (vadduser -C),
    // empty otherwise. The files backend keeps it as an eighth vpasswd field.
    std::string scram;
};

// A POP/IMAP-before-SMTP grant: `email` logged in from `ip` at `timestamp` (Unix seconds).
struct RelayGrant {
    std::string email;
    std::string ip;
    std::int64_t timestamp = 0;
};

// The files backend's open-smtp file: one grant a line, `<ip>:allow,RELAYCLIENT=""<TAB><time><TAB><email>`
// (vpopmail's lines with a third field). A missing file has none; malformed lines are skipped.
std::vector<RelayGrant> read_open_smtp(const std::filesystem::path& file);
// The text of an open-smtp file holding `grants`.
std::string format_open_smtp(const std::vector<RelayGrant>& grants);

// A mail filter rule as stored: one row of IndiMail's vfilter table (filter.hpp gives the fields their
// meaning and checks them). The fields keep what the store holds, even values this version does not
// understand, so that reading a rule never fails.
struct FilterRule {
    int number = 0;       // filter_no: 0 for comparison 5 ("My id not in To, CC, Bcc"), else 1..255
    std::string name;     // filter_name
    int header = -1;      // header_name: an index of the header list; -1 with comparison 5
    int comparison = 0;   // comparision (sic): 0-7
    std::string keyword;  // empty with comparison 5
    std::string folder;   // destination: Inbox, a folder name, or /NoDeliver
    std::string action;   // bounce_action: 0, 1, 2&address, 2|program, 3&address, 3|program
};

// A login (IndiMail's lastauth row): the last time `service` authenticated the mailbox, and from where.
// Services: what the login program says (pop3, imap, smtp, ...), "add" when the mailbox was made, "pass"
// when its password was changed.
struct LoginRecord {
    std::string service;
    std::string ip;
    std::int64_t time = 0;  // Unix seconds
};

struct PurgeResult {
    std::uint64_t deleted = 0;
    std::uint64_t kept = 0;
    std::uint64_t batches = 0;
};

// What a backend needs to know of a domain.
struct DomainRef {
    std::string name;
    std::filesystem::path dir;  // the domain directory (domains/<name>)
    Owner owner;                // the domain's uid and gid
    bool bulk = false;          // defer cdb rebuilds to `qmailctl cdb`
};

// A domain as the database keeps it for every mail host that shares it (the MariaDB store: qvmail's
// `qvdomain` table for a domain, IndiMail's `aliasdomain` for an alias domain). Each host derives its
// own files from these rows (qmailctl sync, domain_sync.hpp).
struct SharedDomain {
    std::string name;
    std::string alias_of;    // an alias domain: its real domain (the other fields are unused)
    std::string owner;       // "user:group" names of the owner where they have any ("" each part else)
    Owner ids;               // the owner's uid and gid on the host that wrote the row
    std::string handler;     // .qmail-default's handler; "" when the file was made by hand
    bool vfilter = false;    // .qmail-default runs vfilter (not vdelivermail)
    std::string hash;        // hash_method ("" none)
    std::string base_path;   // .base_path ("" none: the host's BASE_PATH)
    bool chkrcpt = false;    // listed in control/chkrcptdomains
};
// The row of an alias domain.
inline SharedDomain alias_domain_row(std::string alias, std::string real) {
    SharedDomain s;
    s.name = std::move(alias);
    s.alias_of = std::move(real);
    return s;
}

// A mail host sharing the database (qvmail's qvhost table): its name (its control/me) and the address and
// SMTP port the other hosts hand it the mail of its mailboxes on (its control/clusteraddress); the base
// path of its mailbox homes, and how the other hosts reach them (its control/clusterhomes: "local" for a
// file system they share, else an rsync destination prefix such as "vmail@10.0.0.2:"; "" for none).
struct ClusterHost {
    std::string name;
    std::string address;
    int smtp_port = 25;
    std::string base_path;
    std::string homes;
    bool operator==(const ClusterHost&) const = default;
};

class Store {
public:
    virtual ~Store() = default;
    virtual std::string_view backend() const noexcept = 0;

    // Reads. Throw Error 69 (service down) or 66/74 (unreadable files).
    virtual std::optional<UserRecord> get_user(const DomainRef& d, std::string_view name) = 0;
    virtual std::vector<UserRecord> users(const DomainRef& d) = 0;
    virtual std::vector<std::string> aliases(const DomainRef& d) = 0;  // alias names
    // `lock`: inside the change, with the lines locked until commit (mysql), so that two hosts editing one
    // alias at once cannot both start from the same lines and lose one's edit: the second reads the
    // first's lines, or the cluster rolls it back (Error 75) and it runs again (retry_rolled_back).
    virtual std::vector<std::string> alias_lines(const DomainRef& d, std::string_view alias, bool lock = false) = 0;

    // Changes, collected until stage() and made durable by commit(). Throw Error 9 when adding
    // something that exists, 67 when changing a mailbox that does not.
    virtual void create_domain(const DomainRef& d) = 0;
    virtual void drop_domain(const DomainRef& d) = 0;  // every mailbox, alias and filter rule of the domain
    virtual void add_user(const DomainRef& d, const UserRecord& u) = 0;
    virtual void update_user(const DomainRef& d, const UserRecord& u) = 0;
    virtual void remove_user(const DomainRef& d, std::string_view name) = 0;
    // Replaces the delivery lines of an alias; no lines removes it.
    virtual void set_alias(const DomainRef& d, std::string_view alias, const std::vector<std::string>& lines) = 0;
    // One line of an alias: `old` (as alias_lines gave it) taken out, `line` added (in its place, or last),
    // leaving the other lines as they are now: with hosts sharing the database, a line another host added
    // meanwhile stays (mysql: one row each), where set_alias would write back only the lines read before.
    virtual void change_alias_line(const DomainRef& d, std::string_view alias, const std::optional<std::string>& old,
                                   const std::optional<std::string>& line) = 0;
    // Inactive mailboxes (IndiMail's indibak table; the files store's <domain dir>/indibak, in vpasswd's
    // format): kept with their homes but unknown to delivery and logins until made active again.
    virtual std::optional<UserRecord> get_inactive_user(const DomainRef& d, std::string_view name) = 0;
    virtual std::vector<UserRecord> inactive_users(const DomainRef& d) = 0;
    // Moves a mailbox's record between the active and the inactive set (in the change). Throws Error 67
    // when it is not in the set it leaves.
    virtual void set_active(const DomainRef& d, std::string_view name, bool active) = 0;
    virtual void update_inactive_user(const DomainRef& d, const UserRecord& u) = 0;  // as update_user
    virtual void remove_inactive_user(const DomainRef& d, std::string_view name) = 0;

    // Logins (IndiMail's lastauth). record_login takes effect at once, outside stage/commit (mysql: the
    // lastauth table, one row per mailbox and service; files: <home>/lastauth, one line per service).
    virtual void record_login(const DomainRef& d, const UserRecord& u, const LoginRecord& l) = 0;
    // The logins of every mailbox of the domain, active and inactive, by name; of one mailbox.
    virtual std::map<std::string, std::vector<LoginRecord>> logins(const DomainRef& d) = 0;
    virtual std::vector<LoginRecord> user_logins(const DomainRef& d, const UserRecord& u) = 0;
    // A renamed mailbox's logins follow it (in the change; the files store's go with its home). Call it
    // before remove_user of the old name.
    virtual void move_logins(const DomainRef& from, std::string_view old_name, const DomainRef& to,
                             std::string_view new_name) = 0;

    // A domain renamed (vrenamedomain): every row that names `from` by name now names `to` (mysql: the
    // mailboxes, inactive mailboxes, aliases, filter rules and logins). The files store keeps all of it
    // inside the domain directory, which the caller moves. Call it after every other change to the
    // domain's rows in the same change.
    virtual void rename_domain_rows(const DomainRef& from, const std::string& to) = 0;
    // Relay grants recorded for the address `from` ("user@domain"), or for every address of a domain
    // (`from` "@domain"), now name `to` (an address, or "@domain"). mysql: in the change's transaction;
    // files: open-smtp is rewritten with the change (its tcprules lines, by IP, stay as they are).
    virtual void rename_grants(const std::string& from, const std::string& to) = 0;

    // POP/IMAP-before-SMTP grants. mysql: the relay table, keyed on (email, ip), matched on the
    // sender (case-insensitive) and the IP; files: the open-smtp file, by IP only (as vpopmail), whose
    // lines qmailctl cdb folds into tcp.smtp.cdb. These take effect at once, outside stage/commit.
    // A grant newer than `since` for this client (and sender, when the backend keys on it; nullopt:
    // any sender).
    virtual std::optional<RelayGrant> find_grant(const std::string& ip, const std::optional<std::string>& sender,
                                                 std::int64_t since) = 0;
    virtual std::vector<RelayGrant> list_grants() = 0;
    // The three changes below are for stores whose grants are rows (grants_in_rules() false): the files
    // store's grants change together with tcp.smtp.cdb, through grant_relay(), revoke_relay() and
    // clear_open_smtp() in relay.hpp, and these throw Error 70 there.
    virtual void record_grant(const RelayGrant& g) = 0;  // replaces a grant for the same email and IP
    // Removes the grants for this IP (and email, when given); returns how many.
    virtual std::uint64_t revoke_grants(const std::string& ip, const std::optional<std::string>& email) = 0;
    // Removes the grants not newer than `cutoff`, in batches of `batch` rows.
    // `progress` hears of the rows removed so far after each batch.
    virtual PurgeResult purge_grants(std::int64_t cutoff, std::uint64_t batch, const ProgressFn& progress) = 0;
    virtual std::string grants_source() const = 0;  // for messages: "relay table", a file name
    // Whether the grants take effect through tcp.smtp.cdb (files: the cdb must be rebuilt after a
    // change) rather than being looked up at RCPT time (mysql).
    virtual bool grants_in_rules() const noexcept = 0;

    // Filter rules (vcfilter, vfilter), per address, ordered by number. mysql: IndiMail's vfilter table
    // (emailid "local@domain"); files: <domain dir>/vfilter/<local>, one rule a line (see filter.hpp).
    // `lock`: inside the change, with the rows locked until commit (mysql), so that two hosts adding
    // rules for one address at once cannot pick the same number (when both take only the gap lock of an
    // address without rules, the server breaks their deadlock with Error 75 for one of them, whose change
    // then runs again). A malformed rules file throws ParseError.
    virtual std::vector<FilterRule> filters(const DomainRef& d, std::string_view local, bool lock = false) = 0;
    // The local parts (prefilt and postfilt included) that have rules.
    virtual std::vector<std::string> filter_owners(const DomainRef& d) = 0;
    // Throw Error 9 when the number, or the header, comparison, keyword and folder, are taken.
    virtual void add_filter(const DomainRef& d, std::string_view local, const FilterRule& r) = 0;
    virtual void update_filter(const DomainRef& d, std::string_view local, const FilterRule& r) = 0;  // by number
    virtual void remove_filter(const DomainRef& d, std::string_view local, int number) = 0;
    virtual void remove_filters(const DomainRef& d, std::string_view local) = 0;  // every rule of the address

    // Domains shared through the database (true for mysql, whose hosts may share one server or cluster;
    // the files store keeps domains on its host only, and the three changes below do nothing there).
    virtual bool shares_domains() const noexcept = 0;
    // Every domain and alias domain the database has, sorted by name; one by name (nullopt: none).
    virtual std::vector<SharedDomain> shared_domains() = 0;
    virtual std::optional<SharedDomain> shared_domain(std::string_view name) = 0;
    // The names removed from the database (vdeldomain, vrenamedomain's old name) and not added again:
    // the only local domains qmailctl sync takes away.
    virtual std::vector<std::string> removed_domains() = 0;
    // In the change. put: Error 9 ("already exists") when the name is taken, a domain or alias domain
    // alike (two hosts adding one name at once: the second to commit gets it); update: by name;
    // remove: the domain's or alias domain's row, and the rows of a real domain's alias domains, each name
    // then listed by removed_domains() (put takes it off that list).
    virtual void put_shared_domain(const SharedDomain& d) = 0;
    virtual void update_shared_domain(const SharedDomain& d) = 0;
    virtual void remove_shared_domain(std::string_view name) = 0;

    // Which host a mailbox lives on (IndiMail's hostcntrl table; nullopt: no row, as for every mailbox of
    // the files store and those added before hosts were recorded: the mailbox is local to every host).
    // set_mailbox_host is in the change; remove_user, drop_domain and rename_domain_rows take the rows
    // with them.
    virtual std::optional<std::string> mailbox_host(const DomainRef& d, std::string_view name) = 0;
    virtual void set_mailbox_host(const DomainRef& d, std::string_view name, const std::string& host) = 0;
    // The mailboxes of a host: (domain, name) pairs.
    virtual std::vector<std::pair<std::string, std::string>> host_mailboxes(const std::string& host) = 0;
    // A host (qvhost). register_host takes effect at once (outside stage/commit).
    virtual std::optional<ClusterHost> cluster_host(std::string_view name) = 0;
    virtual void register_host(const ClusterHost& h) = 0;

    // The files backend writes its changes into `tx` here; a database backend has run its statements
    // in an open transaction and commits in commit(), after the files are in place.
    virtual void stage(FileTransaction& tx) = 0;
    virtual void commit() = 0;
    virtual void rollback() noexcept = 0;
};

// Runs `change` (a whole change: what it reads, stages and applies) once more when the database rolled it
// back (Error 75: a deadlock between two hosts' changes, or a Galera certification failure at commit),
// up to `attempts` times in all, after a pause that grows and is drawn at random so that the writers do
// not meet again; then the last Error 75 is thrown. Any other error is thrown at once. The store's open
// transaction is rolled back before each new attempt.
void retry_rolled_back(Store& store, const std::function<void()>& change, int attempts = 5);

struct MysqlConfig;
struct MysqlOverrides;

std::unique_ptr<Store> make_files_store(const Paths& paths);
// Connects; throws Error 69 naming the server when it cannot.
std::unique_ptr<Store> make_mysql_store(const MysqlConfig& config);
// The backend this host uses: mysql when --mysql-defaults-file/--mysql-group, MYSQL_READ_DEFAULT_FILE/
// GROUP or control/host.mysql select it (see mysql.hpp), files otherwise.
std::unique_ptr<Store> open_store(const Paths& paths);
std::unique_ptr<Store> open_store(const Paths& paths, const MysqlOverrides& overrides);

// vpasswd line format of the files backend (exposed for qmailctl cdb and the tests).
std::string format_vpasswd_line(const UserRecord& u);
std::optional<UserRecord> parse_vpasswd_line(std::string_view line);
// The .qmail file name of an alias ('.' written as ':').
std::string qmail_alias_file(std::string_view alias);

}  // namespace qv
