// Django Channels tutorial (Channels 4.1+, docs/tutorial/part_1.rst): the <script> block of
// chat/templates/chat/index.html, verbatim below these comments. It is a file rather than
// inline because the site's Content-Security-Policy (default-src 'self') blocks inline
// scripts. It sends the browser to '/chat/' + roomName + '/', this site's own room page,
// which speaks the same protocol as the tutorial's room.html.
        document.querySelector('#room-name-input').focus();
        document.querySelector('#room-name-input').onkeyup = function(e) {
            if (e.key === 'Enter') {  // enter, return
                document.querySelector('#room-name-submit').click();
            }
        };

        document.querySelector('#room-name-submit').onclick = function(e) {
            var roomName = document.querySelector('#room-name-input').value;
            window.location.pathname = '/chat/' + roomName + '/';
        };
