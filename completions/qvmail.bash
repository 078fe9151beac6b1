# bash completion for the qvmail commands. Each command completes itself through its hidden
# "__complete" mode, so these completions always match the command's --help.
_qvmail_complete() {
    local IFS=$'\n'
    COMPREPLY=($("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _qvmail_complete qmailctl vadddomain vdeldomain vdominfo vmoddomain \
    vadduser vdeluser vpasswd vuserinfo vmoduser clearopensmtp vchkpass vcfilter
