// Every runtime location, derived in one place from the environment and the compiled default.
//
//   QMAILHOME    compiled default (/var/indimail); the root of everything below
//   CONTROLDIR   control files; default "control"; relative values are taken under QMAILHOME
//   TCP_FILE     the SMTP access rules (tcp.smtp); default QMAILHOME/etc/tcp.smtp. Other tcp.<service>
//                rules files, and the files store's relay grants (open-smtp), are in the same directory.
//                (OPEN_SMTP names no file here: it only tells vchkpass to record grants.)
//   ASSIGNDIR    users/assign and users/cdb; default QMAILHOME/users
//   DOMAINDIR    parent of domains/ (as IndiMail); default QMAILHOME
//   BASE_PATH    users' mail homes; default QMAILHOME/home
//   QUEUEDIR     the queue; default QMAILHOME/queue
//   QUEUED_SOCKET  qmail-queued's socket; default QMAILHOME/run/qmail-queued.sock
//   QMAILQUEUE   the program that queues a message in qmail-queue's place (none: qmail-queued or qmail-queue)
//   SERVICEDIR   envdir-style service variables; default QMAILHOME/service
//   BOUNCERULES  the bounce envrules file; default CONTROLDIR/bounce.envrules (see bounce.hpp)
//   OUTGOINGIP   the source address for remote deliveries, before the outgoingip files
//   SMTPROUTE    one smtproutes line (domain:relay[:port]) that replaces control/smtproutes (remote.hpp)
//   SMTPROUTESFILE  the smtproutes file; default CONTROLDIR/smtproutes; relative values under CONTROLDIR
//   QREGEX       envrules patterns are regular expressions rather than wildmat patterns
//
// Any relative value (other than QMAILHOME itself, which is made absolute against the current
// directory) is taken relative to QMAILHOME. Empty variables count as unset.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace qv {

namespace fs = std::filesystem;

// A read-only view of the environment. The process environment by default; tests pass a map.
class Env {
public:
    using Vars = std::map<std::string, std::string>;
    Env();  // the process environment
    explicit Env(Vars vars);
    std::optional<std::string> get(std::string_view name) const;  // unset and empty are both nullopt

private:
    std::optional<Vars> vars_;
};

struct Paths {
    fs::path qmailhome;
    fs::path controldir;
    fs::path tcp_file;
    fs::path assigndir;
    fs::path domaindir;
    fs::path base_path;
    fs::path queuedir;
    fs::path servicedir;
    fs::path queue_socket;                           // QUEUED_SOCKET: qmail-queued's unix socket
    std::optional<std::string> qmailqueue;           // QMAILQUEUE
    fs::path relayclients;                           // RELAYCLIENTS: control/relayclients, or the file it names
    fs::path open_smtp;                              // the files store's relay grants: open-smtp beside TCP_FILE
    unsigned relay_clear_minutes = 60;               // RELAY_CLEAR_MINUTES: how long a relay grant lasts
    fs::path sbindir;                                // where vdelivermail and vfilter are installed (compiled in)
    std::optional<std::string> bouncerules;          // BOUNCERULES (bounce.hpp says where the file is)
    std::optional<std::string> outgoingip;           // OUTGOINGIP
    std::optional<std::string> smtproute;            // SMTPROUTE: one route, in place of the smtproutes file
    fs::path smtproutesfile;                         // SMTPROUTESFILE: control/smtproutes, or the file it names
    bool qregex = false;                             // QREGEX set (any value)
    std::optional<std::string> password_hash;        // PASSWORD_HASH: the hash method for new passwords
    std::optional<std::string> mysql_default_file;   // MYSQL_READ_DEFAULT_FILE
    std::optional<std::string> mysql_default_group;  // MYSQL_READ_DEFAULT_GROUP
    std::optional<std::string> mysql_database;       // MYSQL_DATABASE

    static Paths from(const Env& env);
    static Paths from_env() { return from(Env()); }

    fs::path control(std::string_view name) const { return controldir / std::string(name); }
    fs::path etc_dir() const { return tcp_file.parent_path(); }
    fs::path domains_dir() const { return domaindir / "domains"; }
    fs::path lock_file() const { return qmailhome / ".qvmail.lock"; }

    // `p` shown relative to QMAILHOME when it lies below it, else absolute: for messages.
    std::string display(const fs::path& p) const;
};

const char* compiled_qmailhome() noexcept;

}  // namespace qv
