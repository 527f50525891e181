"""`amber mount MOUNTPOINT`: browse the snapshots as a read-only folder (FUSE)."""

import click

from .options import command


@command("mount")
@click.argument("mountpoint")
@click.option("--host", "hosts", multiple=True, metavar="H", help="only snapshots of this host")
@click.option("--tag", "tags", multiple=True, metavar="T", help="only snapshots with this tag")
@click.option("--path", "paths", multiple=True, metavar="P", help="only snapshots that include this path")
@click.option("--allow-other", is_flag=True, help="let other users read the mount (as the snapshots' modes allow)")
def mount(session, mountpoint, hosts, tags, paths, allow_other):
    """Serve the snapshots as a read-only folder at MOUNTPOINT (an empty folder) until
    Ctrl-C, SIGTERM or `fusermount3 -u MOUNTPOINT`: snapshots/<time>/..., ids/<id>/...,
    hosts/<host>/<time>/..., tags/<tag>/<time>/..., each with the absolute paths backed up."""
    r = session.open()

    def ready():
        click.echo(f"serving the repository at {mountpoint}; press Ctrl-C or run `fusermount3 -u` to unmount", err=True)

    r.mount(mountpoint, hosts=hosts, tags=tags, paths=paths, allow_other=allow_other, on_ready=ready)
    click.echo("unmounted", err=True)
