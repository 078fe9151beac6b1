// Mailboxes of virtual domains: vadduser, vdeluser, vpasswd, vmoduser and vuserinfo's data.
// A mailbox's home is <base path>/<bucket>/<domain>/<name> (buckets as IndiMail: A2E, F2K, L2P,
// Q2S, T2Zsym by the first letter), with Maildir/{cur,new,tmp}, all 0750 and owned by the domain.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/address.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/store.hpp"

namespace qv {

// Quota as IndiMail keeps it in pw_shell: NOQUOTA, a size in bytes (k, m, g suffixes accepted), or
// size and message count "<size>,<count>" (stored "<bytes>S,<count>C"). Throws Error 65.
std::string normalize_quota(std::string_view text);
struct Quota {
    std::optional<std::uint64_t> bytes;  // nullopt: unlimited
    std::optional<std::uint64_t> count;
};
Quota parse_quota(std::string_view stored);

// At most 48 characters, no ':' and no control characters. Throws Error 65.
std::string check_gecos(std::string_view gecos);

struct AddUserRequest {
    Address address;
    std::string passwd;                // crypt hash
    std::optional<std::string> gecos;  // default: the local part
    std::optional<std::string> quota;  // nullopt: the domain's default (vlimit -q), else NOQUOTA
    std::string scram;  // "{CRAM}<clear text>" with vadduser -C
    bool inactive = false;  // added to the inactive set (vadduser -i)
    // With a store that shares domains: the host the mailbox lives on (hostcntrl); nullopt: this one. A
    // mailbox of another host gets no home here: qmailctl sync on that host makes it.
    std::optional<std::string> host;
};

// Stages a mailbox's home with its Maildir (cur, new, tmp), and the bucket and domain tree above it, owned
// by the domain's owner (vadduser, vadddomain's postmaster, qmailctl sync).
void stage_mailbox_home(FileTransaction& tx, const std::filesystem::path& home, Owner owner);

// Throws Error 68 (no domain, or no such host), 9 (mailbox or alias of that name exists), 64 (a host
// without a store that shares domains).
UserRecord add_user(const Paths& paths, Store& store, const AddUserRequest& req, bool dry_run,
                    ChangeReport* report = nullptr);
// Removes the mailbox (active or inactive), its home, its filter rules, its logins, its own .qmail file
// and alias lines that forward to it.
// Throws Error 68 or 67.
void delete_user(const Paths& paths, Store& store, const Address& a, bool dry_run, ChangeReport* report = nullptr);
// Renames a mailbox, to another name or another domain of the same owner (IndiMail's vrenameuser): its
// store record (password, flags, quota, comment) under the new name, its home and Maildir moved to the
// new name's place, its filter rules and own .qmail file, the forwards to it in every domain's aliases,
// its relay grants and its logins; in one change, or nothing. An inactive mailbox stays inactive. Throws Error 68 (no domain), 67 (no such
// mailbox), 9 (the new name is a mailbox or alias, or its home exists), 65 (the same mailbox, or domains
// with different owners), 73 (the home cannot be moved, e.g. to another file system).
struct RenameUserResult {
    UserRecord user;                     // as it is now
    std::vector<std::string> forwards;  // aliases changed to forward to the new address
    std::vector<std::string> steps;
};
RenameUserResult rename_user(const Paths& paths, Store& store, const Address& from, const Address& to, bool dry_run);

// Moves a mailbox to another host sharing the database (vmoduser --host), run on the host that holds it:
// its home is copied to the new host's place for it (that host's base path, reached as that host's
// control/clusterhomes says, with rsync), then its host (hostcntrl) and home change in one transaction,
// then the mail that arrived during the copy follows and the old copy is removed. From the change on,
// every host hands its mail and logins to the new host. A failure before the change leaves the mailbox
// where it was. Throws Error 64 (a store that shares nothing), 68 (no domain, or no such host), 67 (no
// such mailbox), 65 (a mailbox of another host: run it there), 78 (the new host says nowhere how its
// homes are reached), 74 (the copy failed), 69/75 (the database). `moved` false: already on that host.
struct MoveMailboxResult {
    UserRecord user;        // as it is now
    std::string from_host;
    bool moved = false;
    std::vector<std::string> steps;     // the copies and removals, for -v and --dry-run
    std::vector<std::string> warnings;  // after the change: the old copy not removed, the second copy failed
};
MoveMailboxResult move_mailbox(const Paths& paths, Store& store, const Address& a, const std::string& host,
                               bool dry_run);

// IndiMail's "add" login of a new mailbox (its creation time, for vdeloldusers), recorded while the
// change that makes it is open (mysql: inside its transaction; files: in the home just made). Fails the
// change only when the database rolled the transaction back or went away (Error 75, 69); otherwise
// vdeloldusers goes without it by the Maildir's time.
void record_creation(Store& store, const DomainRef& d, const UserRecord& u, bool dry_run);

// postmaster, abuse and mailer-daemon (RFC 2142): removed only with a confirmation, never idle.
bool is_role_account(std::string_view name) noexcept;

// A mailbox, active or inactive (`active` says which); throws Error 67 when it is neither.
struct FoundUser {
    UserRecord user;
    bool active = true;
};
FoundUser require_any_user(Store& store, const Domain& d, std::string_view name);

// Looks a mailbox up; throws Error 68 or 67.
UserRecord require_user(Store& store, const Domain& d, std::string_view name);
// Writes a changed record (password, flags, gecos, quota).
void update_user(Store& store, const Domain& d, const UserRecord& u, bool dry_run);

struct FlagName {
    std::uint32_t bit;
    char letter;            // vmoduser's option letter
    std::string_view name;  // for --set/--clear and JSON
    std::string_view text;  // vuserinfo's description
};
const std::vector<FlagName>& user_flags();
std::optional<std::uint32_t> parse_flag_name(std::string_view name);

// Size and number of messages in a Maildir and its folders (Maildir++ .Folder subdirectories).
struct MaildirUsage {
    std::uint64_t bytes = 0;
    std::uint64_t count = 0;
};
// The usage a mailbox shows: the sums its maildirsize keeps (Maildir++, as deliveries update it) when the
// file is there and sound, else counted with stat(2); nothing is written. None for a missing Maildir.
MaildirUsage maildir_usage(const std::filesystem::path& maildir);

}  // namespace qv
