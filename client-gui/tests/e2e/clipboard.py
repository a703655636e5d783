#!/usr/bin/env python3
"""The X clipboard for the GUI test, through Tk (python3-tk).

  clipboard.py SECONDS TEXT   owns the clipboard with TEXT (may hold newlines) for
                              SECONDS, as a program the user copied from would
  clipboard.py get            prints what the clipboard holds"""
import sys
import tkinter


def main() -> int:
    if sys.argv[1] == "get":
        root = tkinter.Tk()
        root.withdraw()
        try:
            print(root.clipboard_get(), end="")
        except tkinter.TclError:
            return 1
        return 0
    seconds, text = float(sys.argv[1]), sys.argv[2]
    root = tkinter.Tk()
    root.withdraw()
    root.clipboard_clear()
    root.clipboard_append(text)
    root.update()
    print("ready", flush=True)
    root.after(int(seconds * 1000), root.destroy)
    root.mainloop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
