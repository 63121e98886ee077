"""Shell completion scripts generated from the argparse parser.

Subcommands and options come from the parser itself, so they never drift;
profile names are asked of ``fwknop list`` at completion time (it reads
profiles.toml with tomllib and never touches the keyring, so it is quick).
"""

from __future__ import annotations

import argparse

__all__ = ["profile_commands", "script"]


def profile_commands(parser: argparse.ArgumentParser) -> list[str]:
    """Subcommands whose first argument is a profile name (read from the parser)."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                first = next((a for a in sub._actions if not a.option_strings), None)
                if first is not None and first.metavar == "PROFILE":
                    out.append(name)
    return out


def _commands(parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                opts = sorted({o for a in sub._actions for o in a.option_strings})
                out[name] = opts
    return out


def _globals(parser: argparse.ArgumentParser) -> list[str]:
    return sorted({o for a in parser._actions for o in a.option_strings})


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``bash``, ``zsh`` or ``fish``."""
    commands = _commands(parser)
    names = " ".join(commands)
    profile_cmds = " ".join(profile_commands(parser))
    if shell in ("bash", "zsh"):
        cases = "\n".join(
            f'        {name}) opts="{" ".join(opts)}" ;;' for name, opts in commands.items()
        )
        body = f"""# fwknop completion ({shell}); eval "$(fwknop completion {shell})"
_fwknop_complete() {{
    local cur cmd i opts=""
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            -*) ;;
            *) cmd="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    if [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W "{names} {" ".join(_globals(parser))}" -- "$cur"))
        return 0
    fi
    case "$cmd" in
{cases}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    fi
    case " {profile_cmds} " in
        *" $cmd "*)
            COMPREPLY=($(compgen -W "$(command fwknop list 2>/dev/null)" -- "$cur")) ;;
        *)
            COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
    return 0
}}
"""
        if shell == "zsh":
            body += "autoload -U +X bashcompinit && bashcompinit\n"
        return body + "complete -F _fwknop_complete fwknop\n"
    lines = [
        "# fwknop completion (fish); fwknop completion fish | source",
        "complete -c fwknop -f",
        f"complete -c fwknop -n '__fish_use_subcommand' -a '{names}'",
        f"complete -c fwknop -n '__fish_seen_subcommand_from {profile_cmds}' "
        "-a '(command fwknop list 2>/dev/null)'",
    ]
    for name, opts in commands.items():
        for opt in opts:
            if opt.startswith("--"):
                lines.append(
                    f"complete -c fwknop -n '__fish_seen_subcommand_from {name}' -l {opt[2:]}"
                )
    return "\n".join(lines) + "\n"
