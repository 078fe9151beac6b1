// Virtual domains: what vadddomain creates and vdeldomain removes, and how a domain is found.
//
// A domain exists when users/assign has its line. Adding one creates, in one transaction:
//   <DOMAINDIR>/domains/<domain>/ (0750) with .qmail-default ("| <sbindir>/vdelivermail '' <handler>"),
//     bulk_mail/, hash_method (with -h) and .base_path (with -B), and the store's per-domain data;
//   the users/assign line (+ users/cdb), rcpthosts (or morercpthosts + .cdb once rcpthosts holds 50
//     domains), virtualdomains "<domain>:<domain>", chkrcptdomains (with -R), the domain removed
//     from locals;
//   <BASE_PATH>/{A2E,F2K,L2P,Q2S,T2Zsym}/<domain>/ and the postmaster mailbox with its Maildir;
//   the aliases abuse and mailer-daemon, both to postmaster.
// Any failure undoes every step already taken.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/atomic_file.hpp"
#include "qvmail/delivery_instruction.hpp"
#include "qvmail/password.hpp"
#include "qvmail/store.hpp"

namespace qv {

class FileTransaction;
struct Paths;

struct Domain {
    std::string name;
    Owner owner;
    std::filesystem::path dir;             // the domain directory
    std::filesystem::path base_path;       // where its mailboxes live (.base_path, or BASE_PATH)
    std::optional<HashMethod> hash;        // the domain's hash_method file, if any
    std::optional<QmailDefault> delivery;  // parsed .qmail-default (nullopt: missing or hand-made)
    std::string alias;                     // looked up by the name of one of its alias domains: that name

    DomainRef ref(bool bulk = false) const { return DomainRef{name, dir, owner, bulk}; }
};

// Reads users/assign (the source of truth, so that bulk adds whose users/cdb is not rebuilt yet are
// seen too). Unknown domain: nullopt. An alias domain (IndiMail's layout: its users/assign line names
// domains/<alias>, a symbolic link to the real domain's directory) gives the real domain, with `alias`
// set: its mailboxes, aliases and settings are the real domain's.
std::optional<Domain> find_domain(const Paths& paths, std::string_view name);
// As find_domain, but throws Error 68 "no such domain".
Domain require_domain(const Paths& paths, std::string_view name);
// As require_domain; a domain the database has that this host has not laid out yet (qmailctl sync) is
// refused saying so.
Domain require_domain(const Paths& paths, Store& store, std::string_view name);
std::vector<Domain> list_domains(const Paths& paths);  // the real domains (no alias domains)
// The alias domains of a real domain, from its .aliasdomains file (IndiMail's), sorted.
std::vector<std::string> alias_domains(const Domain& d);

// The hash method for new passwords of a domain: PASSWORD_HASH, the domain's hash_method,
// control/hash_method, then SHA-512.
HashMethod domain_hash_method(const Paths& paths, const Domain& d);

// IndiMail's letter bucket of a mailbox name: A2E, F2K, L2P, Q2S or T2Zsym.
std::string_view mailbox_bucket(std::string_view user);
std::filesystem::path mailbox_home(const Domain& d, std::string_view user);

// The uid and gid new domains get when none is given: the indimail user and group, else (as root)
// IndiMail's fallback 555:555, else the caller's own.
Owner default_domain_owner();

struct AddDomainRequest {
    std::string name;  // already normalised
    Owner owner;
    std::optional<std::filesystem::path> base_dir;   // -d: the domain goes to <base_dir>/domains/<name>
    std::optional<std::filesystem::path> base_path;  // -B: mailboxes under this path
    QmailDefault delivery{false, std::string(kDefaultHandler)};
    std::optional<HashMethod> hash;  // -h: written to <domain dir>/hash_method
    bool chkrcpt = false;            // -R
    bool bulk = false;               // -O: leave users/cdb, morercpthosts.cdb, vpasswd.cdb to qmailctl cdb
    std::string postmaster_passwd;   // crypt hash
    std::string postmaster_scram;    // "{CRAM}<clear text>" with -C
    std::string postmaster_quota = "NOQUOTA";
};

struct ChangeReport {
    std::vector<std::string> steps;  // what was (or would be) done, one line each
};

// Throws Error 9 when the domain exists (nothing changed), 65 for bad input, 73/74/77 for files
// that cannot be written (everything undone).
Domain add_domain(const Paths& paths, Store& store, const AddDomainRequest& req, bool dry_run,
                  ChangeReport* report = nullptr);

// Removes a domain and everything add_domain made, plus its mailboxes and its alias domains. An alias
// domain's name removes that alias domain only. Throws Error 68 if unknown. `keep_mail` (qmailctl sync,
// for a domain removed on another host): a mailbox tree that is not empty stays, with the mail in it.
void delete_domain(const Paths& paths, Store& store, std::string_view name, bool dry_run,
                   ChangeReport* report = nullptr, bool keep_mail = false);

// Makes `alias` an alias domain of `real` as IndiMail's vaddaliasdomain does: the link domains/<alias>
// -> <real>, a users/assign line for it (the real domain's owner), rcpthosts (or morercpthosts) and
// virtualdomains, and a line in the real domain's .aliasdomains; in one transaction. Mail for
// user@alias is then delivered as for user@real. Throws Error 9 when `alias` exists (as a domain, a
// route or a file), 68 when `real` does not, 65 when `real` is itself an alias domain.
// With a store that shares domains, the alias domain's row (IndiMail's aliasdomain table) is written too,
// unless `shared_row` is false (qmailctl sync, deriving it from that row).
void add_alias_domain(const Paths& paths, Store& store, const std::string& alias, const std::string& real, bool dry_run,
                      ChangeReport* report = nullptr, bool shared_row = true);

// Renames a domain (IndiMail's vrenamedomain), in one change or not at all: its directory and mailbox
// trees move to the new name, and everything that names it follows: users/assign (+ cdb), rcpthosts or
// morercpthosts, virtualdomains, chkrcptdomains, the mailboxes' homes, the store's rows (mailboxes,
// inactive mailboxes, aliases, filter rules, logins), forwards to its addresses in every domain's aliases,
// .qmail-default's handler when it names the domain, relay grants, and the links of its alias domains.
// An alias domain's name renames that alias domain only. Throws Error 68 (no such domain), 9 (the new
// name exists as a domain, a route or a directory), 73 (a directory cannot be moved, e.g. to another
// file system).
struct RenameDomainResult {
    std::string real;  // the real domain, or the alias domain's real domain
    bool alias = false;
    std::size_t mailboxes = 0;
    std::vector<std::string> forwards;  // aliases changed
    std::vector<std::string> steps;
};
RenameDomainResult rename_domain(const Paths& paths, Store& store, const std::string& from, const std::string& to,
                                 bool dry_run);

// Domains shared through the database (Store::shares_domains). The row a domain of this host is kept as;
// `chkrcpt`: whether control/chkrcptdomains lists it.
SharedDomain shared_domain_of(const Domain& d, bool chkrcpt, const Paths& paths);
bool in_chkrcptdomains(const Paths& paths, std::string_view name);
// The owner a row names, on this host: its user and group names where they exist here, else its ids.
Owner local_owner(const SharedDomain& row);
// For qmailctl sync: a domain of the database laid out on this host as vadddomain lays it out, without
// its rows (the database has them already) or the postmaster's Maildir (it lives on the host that added
// the domain); a domain of this host brought in line with its row (.qmail-default, hash_method,
// chkrcptdomains). One transaction each.
void add_local_domain(const Paths& paths, Store& store, const SharedDomain& row, bool dry_run,
                      ChangeReport* report = nullptr);
void update_local_domain(const Paths& paths, Store& store, const Domain& d, const SharedDomain& row, bool dry_run,
                         ChangeReport* report = nullptr);

// Changes a domain's .qmail-default (handler, program; nullopt: left as it is, hand-made or not) and
// hash_method, and its row in the database, in one change (vmoddomain).
void modify_domain(const Paths& paths, Store& store, const Domain& d, const std::optional<QmailDefault>& delivery,
                   std::optional<HashMethod> hash, bool dry_run);


// Runs the store's staged changes and the file transaction to completion, or undoes both.
void apply_change(FileTransaction& tx, Store& store);

}  // namespace qv
