"""`cell-control users add|remove|list`: the users of the OPC UA plant gateway and their roles.

The password is asked twice on the terminal, or read as one line from stdin with `--password-stdin`
(for scripts); it never appears on the command line. The file keeps only salted scrypt hashes.
"""
from __future__ import annotations

import argparse
import getpass
import sys

from cell_control.cli import ArgumentParser
from cell_control.cell.plant_users import ROLES, UserFile, UserFileError
from cell_control.cell.plant_server import default_state_dir


def _password(from_stdin: bool, name: str) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip('\n')
    first = getpass.getpass(f'password for {name}: ')
    if getpass.getpass('again: ') != first:
        raise UserFileError('the two passwords differ')
    return first


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog='cell-control users', description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--file', default=str(default_state_dir() / 'users'),
                        help='password file (the gateway parameter users_file; default: %(default)s)')
    commands = parser.add_subparsers(dest='command', required=True)
    add = commands.add_parser('add', help='add a user, or change their role and password')
    add.add_argument('name')
    add.add_argument('--role', required=True, choices=ROLES,
                     help='viewer reads; operator also starts and stops the cell; engineer also changes recipes')
    add.add_argument('--password-stdin', action='store_true', help='read the password as one line from stdin')
    remove = commands.add_parser('remove', help='remove a user')
    remove.add_argument('name')
    commands.add_parser('list', help='list the users and their roles')
    args = parser.parse_args(argv)
    users = UserFile(args.file)
    try:
        if args.command == 'add':
            user = users.add(args.name, args.role, _password(args.password_stdin, args.name))
            print(f'user {user.name} ({user.role}) saved in {users.path}')
        elif args.command == 'remove':
            users.remove(args.name)
            print(f'user {args.name} removed from {users.path}')
        else:
            for user in users.users():
                print(f'{user.name:<24} {user.role}')
    except UserFileError as error:
        print(f'cell-control users: {error}', file=sys.stderr)
        return 2
    return 0
