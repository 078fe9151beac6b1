// Domains shared through the database: several mail hosts on one MariaDB server or Galera cluster each
// derive their own files (users/assign + cdb, rcpthosts or morercpthosts + cdb, virtualdomains,
// chkrcptdomains, the domain directory with .qmail-default, the mailbox trees, alias domains' links and
// .aliasdomains) from the rows vadddomain, vaddaliasdomain, vmoddomain, vrenamedomain and vdeldomain
// write on any of them (qvmail's qvdomain table, IndiMail's aliasdomain; see Store::shared_domains).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/store.hpp"

namespace qv {

struct Paths;

// This host's name among the hosts sharing the database: the first line of control/me ("" without one).
std::string this_host_name(const Paths& paths);
// Where the other hosts reach this one (control/clusteraddress: "IP", "IP:PORT" or "[IPv6]:PORT"; the
// SMTP port, 25 by default); nullopt without the file. Throws Error 78 naming the file for a bad line.
std::optional<ClusterHost> this_host_address(const Paths& paths);

// Where a mailbox lives: here, or on another host (hostcntrl) and, when that host is registered (qvhost),
// at which address.
struct MailboxPlace {
    bool local = true;
    std::string host;                  // the owning host's name ("" without a hostcntrl row: local)
    std::optional<ClusterHost> where;  // the owning host's entry, for a mailbox of another host
};
MailboxPlace mailbox_place(const Paths& paths, Store& store, const DomainRef& d, std::string_view name);

struct SyncChange {
    // add, update, remove, add-alias, remove-alias, import, import-alias; register (this host's
    // address), add-home (the Maildir of a mailbox of this host added on another)
    std::string action;
    std::string domain;
    std::string detail;               // what differs, or the real domain of an alias domain
    std::vector<std::string> steps;   // the files changed (for -v and --dry-run)
};

struct SyncResult {
    std::vector<SyncChange> changes;
    // What sync leaves for the administrator, one line each: a domain of this host the database lacks
    // (and did not remove), an owner or base path that differs, a domain that could not be laid out.
    std::vector<std::string> problems;
    int exit_code = 0;  // of the first domain that failed (the others were still brought in line)
};

// Brings this host's files in line with the database, one domain at a time (each one change, undone
// whole if a step fails); idempotent. First the alias domains and domains the database removed
// (Store::removed_domains; a mailbox tree that still holds mail stays), then domains are added and
// changed, then alias domains added. A domain of this host that the database lacks without having
// removed it (a host whose domains were never recorded, or the wrong database) is reported, never
// removed. Also registers this host's address (control/clusteraddress) and makes the homes of the
// mailboxes of this host that another host added. With dry_run, says what it would do (qmailctl
// check's drift report).
SyncResult sync_domains(const Paths& paths, Store& store, bool dry_run);

// Writes a row for each domain and alias domain of this host that the database lacks (qmailctl db init,
// so that an existing host's domains become shared), in one change. A name the database has already is
// left as the database has it, and reported by the next sync as a difference.
std::vector<SyncChange> import_domains(const Paths& paths, Store& store, bool dry_run);

}  // namespace qv
